package text

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCapKeepsShortTextAndCutsLongTextOnACharacterBoundary(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		n    int
		want string
	}{
		{"short text is unchanged", "abc", 3, "abc"},
		{"long ASCII ends in dots within n", "abcdefgh", 6, "abc..."},
		{"multi-byte character is not split", strings.Repeat("é", 5), 8, "éé..."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Cap(tc.in, tc.n); got != tc.want {
				t.Fatalf("Cap(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
			}
		})
	}
	long := strings.Repeat("é", 200)
	if s := Cap(long, 119); len(s) > 119 || !utf8.ValidString(s) {
		t.Fatalf("Cap: %d bytes, valid %v", len(s), utf8.ValidString(s))
	}
}
