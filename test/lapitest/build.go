// Package lapitest runs a real CrowdSec Local API and cscli for tests: it
// builds both (once, cached) from the pinned module in test/lapibuild,
// starts LAPI on a free loopback port with a throw-away SQLite database, and
// offers helpers around cscli.
package lapitest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/cache"
)

// Version is the CrowdSec release the tests run against; it must match
// test/lapibuild/go.mod.
const Version = "v1.7.8"

// Binaries are the paths of the crowdsec and cscli executables.
type Binaries struct {
	Crowdsec string
	Cscli    string
}

// CacheDir is where built binaries are kept between runs:
// $CROWDSEC_BIN_DIR, or the user cache directory.
func CacheDir() (string, error) { return cache.Dir("CROWDSEC_BIN_DIR", "crowdsec-"+Version) }

// EnsureBinaries returns cached binaries, building them first when needed,
// once for all the test binaries running in parallel.
func EnsureBinaries() (Binaries, error) {
	dir, err := CacheDir()
	if err != nil {
		return Binaries{}, err
	}
	bins := Binaries{Crowdsec: filepath.Join(dir, "crowdsec"), Cscli: filepath.Join(dir, "cscli")}
	built := func() bool { return exists(bins.Crowdsec) && exists(bins.Cscli) }
	return bins, cache.Fill(dir, built, func() error { return build(bins) })
}

func build(bins Binaries) error {
	src, err := buildModuleDir()
	if err != nil {
		return err
	}
	for out, pkg := range map[string]string{
		bins.Crowdsec: "github.com/crowdsecurity/crowdsec/cmd/crowdsec",
		bins.Cscli:    "github.com/crowdsecurity/crowdsec/cmd/crowdsec-cli",
	} {
		tmp := out + ".building"
		cmd := exec.Command("go", "build", "-o", tmp, pkg)
		cmd.Dir = src
		// The checksum database does not know crowdsec's forked modules.
		cmd.Env = append(os.Environ(), "GONOSUMDB=github.com/crowdsecurity/coraza,github.com/crowdsecurity/time", "GOFLAGS=-mod=mod")
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("building %s: %w\n%s", pkg, err, b)
		}
		if err := os.Rename(tmp, out); err != nil {
			return err
		}
	}
	return nil
}

// buildModuleDir finds test/lapibuild next to this source file.
func buildModuleDir() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", fmt.Errorf("cannot locate lapitest sources")
	}
	dir := filepath.Join(filepath.Dir(file), "..", "lapibuild")
	if !exists(filepath.Join(dir, "go.mod")) {
		return "", fmt.Errorf("%s/go.mod not found", dir)
	}
	return dir, nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
