package install

import (
	"bytes"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/apibansim"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/bridgetest"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/lapitest"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/netns"
)

// The uid the bridge runs as below: any user but root does.
const unprivileged = 65534

// The embedded bouncer needs no root: the real binary, run as an
// unprivileged user holding only the capabilities the unit's drop-in
// grants for its mode (as ambient capabilities, with no_new_privs, as
// systemd runs it), inside a fresh network namespace, loads a LAPI
// decision into the kernel and removes its objects on SIGTERM.
func TestBouncerRunsWithTheDropInCapabilities(t *testing.T) {
	netns.Require(t, "nft", "ipset", "iptables", "iptables-restore", "setpriv")
	for _, mode := range []string{"nftables", "ipset"} {
		t.Run(mode, func(t *testing.T) { testDropInCapabilities(t, mode) })
	}
}

func testDropInCapabilities(t *testing.T, mode string) {
	_, dropin := unitRoot(t, "  enabled: true\n  mode: "+mode+"\n")
	caps := dropInCaps(t, dropin)
	t.Logf("drop-in capabilities for %s: %s", mode, caps)

	l := lapitest.Start(t)
	const bouncerKey, password, apibanKey = "caps-bouncer-key-5c1", "caps-machine-pw-93", "caps-apiban-key-2e"
	const banned = "203.0.113.7"
	l.Cscli(t, "bouncers", "add", "caps-fw", "-k", bouncerKey)
	l.AddMachine(t, name, password)
	l.Cscli(t, "decisions", "add", "--ip", banned, "--duration", "1h")

	ns := netns.New(t, "caps")
	simLn := ns.ListenTCP(t, "127.0.0.1:0")
	sim := apibansim.New(apibansim.Options{Key: apibanKey, MaxRequests: apibansim.Unlimited, Listener: simLn})
	t.Cleanup(sim.Close)
	u, err := url.Parse(l.URL)
	if err != nil {
		t.Fatal(err)
	}

	// Everything the unprivileged user reads or writes is its own.
	dir := unprivilegedDir(t)
	bin := filepath.Join(dir, name)
	copyFile(t, filepath.Join(binDir, "v1.0.0-test", name), bin, 0o755)
	state := filepath.Join(dir, "state")
	cfg := bridgetest.Config{
		APIBAN: bridgetest.APIBAN{APIKey: apibanKey, URL: "http://" + simLn.Addr().String(),
			MaxRequests: new(0), PollInterval: 10 * time.Second},
		CrowdSec:   bridgetest.CrowdSec{LAPIURL: "http://" + ns.Forward(t, "127.0.0.1:0", u.Host) + "/", Password: password},
		StateFile:  filepath.Join(state, "state.json"),
		Prometheus: bridgetest.Prometheus{Enabled: new(false)},
		Bouncer: bridgetest.Bouncer{Enabled: new(true), APIKey: bouncerKey, UpdateFrequency: time.Second,
			Mode: mode},
	}.Write(t, dir)
	if err := os.Mkdir(state, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{state, cfg} {
		if err := os.Chown(p, unprivileged, unprivileged); err != nil {
			t.Fatal(err)
		}
	}

	capList := "-all"
	for _, c := range strings.Fields(caps) {
		capList += ",+" + strings.ToLower(strings.TrimPrefix(c, "CAP_"))
	}
	cmd := exec.Command("ip", "netns", "exec", ns.Name, "setpriv",
		"--reuid="+strconv.Itoa(unprivileged), "--regid="+strconv.Itoa(unprivileged), "--clear-groups",
		"--inh-caps="+capList, "--ambient-caps="+capList, "--bounding-set="+capList, "--no-new-privs",
		bin, "-c", cfg)
	d := bridgetest.StartCmd(t, cmd)

	loaded := func() bool {
		if mode == "nftables" {
			rules, _ := ns.Try("nft", "list", "ruleset")
			return strings.Contains(rules, banned)
		}
		sets, _ := ns.Try("ipset", "list")
		rules, _ := ns.Try("iptables", "-w", "-S")
		return strings.Contains(sets, banned) && strings.Contains(rules, "--match-set")
	}
	bridgetest.Eventually(t, 60*time.Second, banned+" in the kernel ("+mode+" mode)", loaded)
	status, err := os.ReadFile("/proc/" + strconv.Itoa(d.Cmd.Process.Pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	if want := "\nUid:\t" + strconv.Itoa(unprivileged) + "\t"; !bytes.Contains(status, []byte(want)) {
		t.Errorf("the bridge does not run as uid %d:\n%s", unprivileged, status)
	}

	d.Stop()
	if loaded() {
		t.Errorf("the bouncer's objects remain after SIGTERM")
	}
}

// dropInCaps is the drop-in's AmbientCapabilities value.
func dropInCaps(t *testing.T, dropin string) string {
	t.Helper()
	for line := range strings.Lines(dropin) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "AmbientCapabilities="); ok {
			return v
		}
	}
	t.Fatalf("no AmbientCapabilities in the drop-in:\n%s", dropin)
	return ""
}

// unprivilegedDir is a directory the unprivileged user can reach (every
// parent searchable) and cannot write.
func unprivilegedDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "bridge-caps-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func copyFile(t *testing.T, src, dst string, perm os.FileMode) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, data, perm); err != nil {
		t.Fatal(err)
	}
}
