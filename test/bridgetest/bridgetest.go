// Package bridgetest holds what the suites that run the real bridge binary
// share: building it once per test binary, and a log buffer safe to read
// while the child writes.
package bridgetest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/lapitest"
)

// Build compiles cmd/crowdsec-apiban-bridge into dir with extra go build
// flags (for example "-race") and returns the binary's path.
func Build(dir string, flags ...string) (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", fmt.Errorf("cannot locate the bridge sources")
	}
	pkg := filepath.Join(filepath.Dir(file), "..", "..", "cmd", "crowdsec-apiban-bridge")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "crowdsec-apiban-bridge")
	args := append(append([]string{"build"}, flags...), "-o", bin, pkg)
	if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the bridge: %w\n%s", err, out)
	}
	return bin, nil
}

// Main is a TestMain body: it builds the bridge with -race into *bin and
// makes sure the crowdsec binaries exist, runs the tests and cleans up.
func Main(m *testing.M, bin *string) {
	os.Exit(mainCode(m, bin))
}

func mainCode(m *testing.M, bin *string) int {
	dir, err := os.MkdirTemp("", "bridge-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if *bin, err = Build(dir, "-race"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if _, err := lapitest.EnsureBinaries(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// Buffer collects a child's output while the test reads it.
type Buffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *Buffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *Buffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
