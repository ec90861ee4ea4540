// Command lapibins builds (once, cached) the crowdsec and cscli binaries the
// tests and the demo run, and prints the directory that holds them.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/lapitest"
)

func main() {
	bins, err := lapitest.EnsureBinaries()
	if err != nil {
		fmt.Fprintln(os.Stderr, "lapibins:", err)
		os.Exit(1)
	}
	fmt.Println(filepath.Dir(bins.Crowdsec))
}
