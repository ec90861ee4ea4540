package install

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// The most systemd-analyze may rate the shipped unit (0 is best, 10 worst).
const maxExposure = 3.0

// unitRoot writes, with the installer's own functions, the unit and (for
// a config with bouncer.enabled) the bouncer's drop-in into a fresh root,
// and returns the root and the drop-in's text ("" if none).
func unitRoot(t *testing.T, bouncerYAML string) (string, string) {
	t.Helper()
	root := t.TempDir()
	cfg := filepath.Join(t.TempDir(), name+".yaml")
	if err := os.WriteFile(cfg, []byte("apiban:\n  api_key: x\nbouncer:\n"+bouncerYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	script := `. "$1/_lib.sh"; install_unit; bouncer_dropin "$2"`
	cmd := exec.Command("bash", "-c", script, "bash", packaging, cfg)
	cmd.Env = append(os.Environ(), "DESTDIR="+root)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("install_unit, bouncer_dropin: %v\n%s", err, out)
	}
	dropin, err := os.ReadFile(filepath.Join(root, "etc/systemd/system", name+".service.d", "bouncer.conf"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return root, string(dropin)
}

var exposureRe = regexp.MustCompile(`Overall exposure level for \S+: ([0-9]+\.[0-9])`)

// exposure runs `systemd-analyze security --offline=yes` on the unit
// under root, drop-ins included.
func exposure(t *testing.T, root string) float64 {
	t.Helper()
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Fatal("systemd-analyze not installed (apt-get install systemd; test/deps.sh does it)")
	}
	out, err := exec.Command("systemd-analyze", "security", "--offline=yes", "--root="+root, name+".service").CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	m := exposureRe.FindSubmatch(out)
	if m == nil {
		t.Fatalf("no exposure level in:\n%s", out)
	}
	score, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return score
}

// The shipped unit runs as its own user with no capability and rates
// maxExposure or better; the bouncer's drop-in grants exactly the
// capabilities its mode needs and keeps the rating.
func TestUnitLeastPrivilege(t *testing.T) {
	unit, err := os.ReadFile(filepath.Join(packaging, name+".service"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"\nUser=" + name + "\n", "\nCapabilityBoundingSet=\n", "\nAmbientCapabilities=\n",
		"\nType=notify\n", "\nWatchdogSec=", " -t\n", "\nStateDirectory=" + name + "\n", "\nLogsDirectory=" + name + "\n"} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("unit lacks %q", strings.TrimSpace(want))
		}
	}
	for _, c := range []struct {
		name, bouncer, caps string
	}{
		{"bouncer off", "  enabled: false\n  mode: ipset\n", ""},
		{"nftables bouncer", "  enabled: true\n  mode: nftables\n", "CAP_NET_ADMIN"},
		{"ipset bouncer", "  enabled: true # on\n  mode: 'ipset'\n", "CAP_NET_ADMIN CAP_NET_RAW"},
	} {
		t.Run(c.name, func(t *testing.T) {
			root, dropin := unitRoot(t, c.bouncer)
			if c.caps == "" && dropin != "" {
				t.Errorf("a drop-in without the bouncer:\n%s", dropin)
			}
			if c.caps != "" {
				for _, want := range []string{"\nAmbientCapabilities=" + c.caps + "\n", "\nCapabilityBoundingSet=" + c.caps + "\n"} {
					if !strings.Contains(dropin, want) {
						t.Errorf("drop-in lacks %q:\n%s", strings.TrimSpace(want), dropin)
					}
				}
			}
			score := exposure(t, root)
			t.Logf("systemd-analyze security: %.1f", score)
			if score > maxExposure {
				t.Errorf("exposure %.1f, want at most %.1f", score, maxExposure)
			}
		})
	}
}
