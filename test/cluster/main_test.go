package cluster

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// bin is the bridge binary, built once for the package.
var bin string

func TestMain(m *testing.M) {
	os.Exit(mainCode(m))
}

func mainCode(m *testing.M) int {
	dir, err := os.MkdirTemp("", "cluster-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	bin = filepath.Join(dir, "crowdsec-apiban-bridge")
	out, err := exec.Command("go", "build", "-race", "-o", bin, "github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/cmd/crowdsec-apiban-bridge").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building the bridge: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}
