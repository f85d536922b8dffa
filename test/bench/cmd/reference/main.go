// Command reference runs the controller-runtime reference webhook that `make bench`
// measures ai-webhook against (see package reference).
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/ai-webhook/ai-webhook/test/bench/reference"
)

func main() {
	if err := reference.Main(os.Args[1:]); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "reference:", err)
		}
		os.Exit(1)
	}
}
