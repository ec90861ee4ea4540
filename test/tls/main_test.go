package tlstest

import (
	"flag"
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/bridgetest"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/lapitest"
)

// binDir holds the bridge binary, built (with -race) by the first test
// that needs it: the bouncer tests do not wait for it.
var (
	binDir    string
	buildOnce sync.Once
	bridgeBin string
	buildErr  error
)

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(mainCode(m))
}

func mainCode(m *testing.M) int {
	if testing.Short() {
		return m.Run() // every test skips
	}
	dir, err := os.MkdirTemp("", "bridge-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binDir = dir
	if _, err := lapitest.EnsureBinaries(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// bridgeBinary returns the bridge built with -race, building it once.
func bridgeBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() { bridgeBin, buildErr = bridgetest.Build(binDir, "-race") })
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return bridgeBin
}

// needLAPI skips under -short: every test here runs a real LAPI.
func needLAPI(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("runs a real LAPI")
	}
}
