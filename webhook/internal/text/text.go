// Package text holds string helpers shared by the webhook's packages.
package text

import "unicode/utf8"

// Cap cuts s to at most n bytes, ending in "...", without splitting a UTF-8
// character: messages, warnings and log values must stay bounded and valid.
func Cap(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - 3
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}
