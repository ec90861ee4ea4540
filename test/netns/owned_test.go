package netns

import (
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/apibansim"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/bridgetest"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/lapitest"
)

// TestConfigRefusesSystemNames: `-t` refuses the names of the system's
// and other programs' objects, naming the key.
func TestConfigRefusesSystemNames(t *testing.T) {
	bin, err := bridgetest.Build(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		b    bridgetest.Bouncer
		want string
	}{
		{bridgetest.Bouncer{Table: "filter"}, `bouncer.table: "filter" is another program's object`},
		{bridgetest.Bouncer{Table: "nat"}, `bouncer.table: "nat" is another program's object`},
		{bridgetest.Bouncer{IptablesChain: "INPUT"}, `bouncer.iptables_chain: "INPUT" is another program's object`},
		{bridgetest.Bouncer{IptablesChain: "FORWARD"}, `bouncer.iptables_chain: "FORWARD" is another program's object`},
	} {
		c.b.Enabled, c.b.APIKey = new(true), "owned-test-bouncer-key"
		dir := t.TempDir()
		cfg := bridgetest.Config{APIBAN: bridgetest.APIBAN{APIKey: "owned-test-apiban-key"},
			CrowdSec: bridgetest.CrowdSec{Password: "owned-test-pw"}, StateFile: filepath.Join(dir, "state.json"),
			Bouncer: c.b}.Write(t, dir)
		r := bridgetest.Run(t, 30*time.Second, bin, "-t", "-c", cfg)
		if r.Code == 0 || !strings.Contains(r.Combined(), c.want) {
			t.Errorf("-t with %+v: exit %d\n%s\nwant an error with %q", c.b, r.Code, r.Combined(), c.want)
		}
	}
}

// TestOwnedObjectsOnly: a table (nftables) or registry and set (ipset)
// with our names that the bridge did not create survive its start, its
// stop and uninstall.sh, each of which names them; objects it did create
// are removed by uninstall.sh even after a kill -9.
func TestOwnedObjectsOnly(t *testing.T) {
	Require(t, "nft", "ipset", "iptables")
	bin, err := bridgetest.Build(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{"nftables", "ipset"} {
		t.Run(mode, func(t *testing.T) { testOwnedObjectsOnly(t, bin, mode) })
	}
}

// foreignOfOurName makes objects with our names that we did not create,
// and returns a function describing them.
func foreignOfOurName(t *testing.T, mode string, pbx *NS) (describe func() string, refusal string) {
	if mode == "ipset" {
		pbx.Cmd(t, "ipset", "create", ourPrefix+"-origins", "bitmap:port", "range", "0-10000", "comment")
		pbx.Cmd(t, "ipset", "add", ourPrefix+"-origins", "5060", "comment", "someone else's")
		pbx.Cmd(t, "ipset", "create", ourPrefix+"-0-v4", "hash:net")
		pbx.Cmd(t, "ipset", "add", ourPrefix+"-0-v4", "192.0.2.77")
		return func() string {
			return pbx.Cmd(t, "ipset", "list", ourPrefix+"-origins") + pbx.Cmd(t, "ipset", "list", ourPrefix+"-0-v4")
		}, "ipset: set " + ourPrefix + "-origins exists but crowdsec-apiban-bridge did not create it"
	}
	pbx.Cmd(t, "nft", "add table inet "+ourTable)
	pbx.Cmd(t, "nft", "add chain inet "+ourTable+" "+ourChain+"-input { type filter hook input priority 0; policy accept; }")
	pbx.Cmd(t, "nft", "add rule inet "+ourTable+" "+ourChain+`-input tcp dport 22 accept comment "someone else's"`)
	return func() string { return pbx.NftTable("inet", ourTable) },
		"nftables: table inet " + ourTable + " exists but crowdsec-apiban-bridge did not create it"
}

func testOwnedObjectsOnly(t *testing.T, bin, mode string) {
	l := lapitest.Start(t)
	const bouncerKey, password, apibanKey = "owned-bouncer-key-9b2", "owned-machine-pw-4d", "owned-apiban-key-7a"
	l.Cscli(t, "bouncers", "add", "apiban-bridge-fw", "-k", bouncerKey)
	l.AddMachine(t, "crowdsec-apiban-bridge", password)
	l.Cscli(t, "decisions", "add", "--ip", banned, "--duration", "1h")
	pbx := New(t, "pbx")
	describe, refusal := foreignOfOurName(t, mode, pbx)
	before := describe()

	u, err := url.Parse(l.URL)
	if err != nil {
		t.Fatal(err)
	}
	simLn := pbx.ListenTCP(t, "127.0.0.1:0")
	sim := apibansim.New(apibansim.Options{Key: apibanKey, MaxRequests: apibansim.Unlimited, Listener: simLn})
	t.Cleanup(sim.Close)
	// The layout uninstall.sh expects, in a throw-away root.
	root := t.TempDir()
	env := []string{"BINDIR=" + root + "/bin", "CONFIG_DIR=" + root + "/etc", "UNIT_DIR=" + root + "/unit",
		"STATE_DIR=" + root + "/state", "LOG_DIR=" + root + "/log", "SYSTEMD=no", "CSCLI=" + root + "/no-cscli"}
	for _, d := range []string{"bin", "etc", "unit", "state", "log"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	cfgPath := bridgetest.Config{
		APIBAN: bridgetest.APIBAN{APIKey: apibanKey, URL: "http://" + simLn.Addr().String(),
			MaxRequests: new(0), PollInterval: 10 * time.Second},
		CrowdSec:   bridgetest.CrowdSec{LAPIURL: "http://" + pbx.Forward(t, "127.0.0.1:0", u.Host) + "/", Password: password},
		StateFile:  filepath.Join(root, "state", "state.json"),
		Prometheus: bridgetest.Prometheus{Enabled: new(false)},
		Bouncer:    bridgetest.Bouncer{Enabled: new(true), APIKey: bouncerKey, UpdateFrequency: time.Second, Mode: mode},
	}.Write(t, filepath.Join(root, "etc"))
	if err := os.Rename(cfgPath, filepath.Join(root, "etc", "crowdsec-apiban-bridge.yaml")); err != nil {
		t.Fatal(err)
	}
	cfgPath = filepath.Join(root, "etc", "crowdsec-apiban-bridge.yaml")
	installed := filepath.Join(root, "bin", "crowdsec-apiban-bridge")
	if out, err := exec.Command("cp", bin, installed).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	secrets := []string{bouncerKey, password, apibanKey}
	uninstall := func() string {
		t.Helper()
		script, err := filepath.Abs("../../packaging/uninstall.sh")
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("ip", "netns", "exec", pbx.Name, script, "-y", "--keep-config")
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("uninstall.sh: %v\n%s", err, out)
		}
		bridgetest.AssertNoSecrets(t, string(out), secrets...)
		return string(out)
	}

	// Start and stop over objects we did not create: refused, untouched.
	d := bridgetest.StartDaemon(t, "ip", nil, secrets, "netns", "exec", pbx.Name, installed, "-c", cfgPath)
	bridgetest.Eventually(t, 60*time.Second, "the refusal to load over another's objects", func() bool {
		return strings.Contains(d.Log.String(), refusal)
	})
	if after := describe(); after != before {
		t.Errorf("objects of our name changed at start:\n%s\nwas:\n%s", after, before)
	}
	out := d.Stop()
	// Logged once at start (not at every retry), once at stop.
	if !strings.Contains(out, "bouncer: cannot remove the kernel objects") || strings.Count(out, refusal) != 2 {
		t.Errorf("stop did not refuse by name:\n%s", out)
	}
	if after := describe(); after != before {
		t.Errorf("objects of our name changed at stop:\n%s\nwas:\n%s", after, before)
	}
	if out := uninstall(); !strings.Contains(out, refusal) {
		t.Errorf("uninstall.sh did not name the object it left:\n%s", out)
	}
	if after := describe(); after != before {
		t.Errorf("objects of our name changed by uninstall.sh:\n%s\nwas:\n%s", after, before)
	}

	// Without them: ours are made; after a kill -9 uninstall.sh removes them.
	if mode == "ipset" {
		pbx.Cmd(t, "ipset", "destroy", ourPrefix+"-origins")
	} else {
		pbx.Cmd(t, "nft", "delete table inet "+ourTable)
	}
	if out, err := exec.Command("cp", bin, installed).CombinedOutput(); err != nil { // uninstall.sh removed it
		t.Fatalf("cp: %v %s", err, out)
	}
	// Run and waited for here, not with StartDaemon: it is killed.
	var log bridgetest.Buffer
	cmd := exec.Command("ip", "netns", "exec", pbx.Name, installed, "-c", cfgPath)
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	bridgetest.Eventually(t, 60*time.Second, "our objects", func() bool { return has(ourElements(t, mode, pbx), banned+"/32") })
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	bridgetest.AssertNoSecrets(t, log.String(), secrets...)
	out = uninstall()
	left := ourObjects(t, mode, pbx)
	if mode == "ipset" {
		// The unrecorded PREFIX-0-v4 stays, alone.
		if left != "sets ["+ourPrefix+"-0-v4], 0 drop rules, 0 jumps" {
			t.Errorf("after uninstall.sh: %s, want only the set we did not create\n%s", left, out)
		}
	} else if left != "" {
		t.Errorf("after uninstall.sh: %s\n%s", left, out)
	}
	if !regexp.MustCompile(`(?m)^` + mode + `\s+removed what this bridge created`).MatchString(out) {
		t.Errorf("uninstall.sh output:\n%s", out)
	}
}
