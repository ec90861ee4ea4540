// Package install runs packaging/install.sh, upgrade.sh and uninstall.sh
// into a throw-away root against a real LAPI and cscli, and checks that the
// installed bridge works and that nothing of it remains afterwards.
package install

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/apibansim"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/bridgetest"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/lapitest"
)

const (
	apiKey = "Key-install-5e4d3c2b1a"
	name   = "crowdsec-apiban-bridge"
)

var (
	packaging = mustAbs("../../packaging")
	binDir    string
)

func mustAbs(p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		panic(err)
	}
	return a
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "bridge-install-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	for _, v := range []string{"v1.0.0-test", "v2.0.0-test"} {
		if _, err := bridgetest.Build(filepath.Join(dir, v), "-ldflags", "-X main.version="+v); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	if _, err := lapitest.EnsureBinaries(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// box is one throw-away root with a LAPI, a cscli wrapper pointed at it
// and a fake systemctl that records its calls.
type box struct {
	t      *testing.T
	lapi   *lapitest.LAPI
	root   string
	tools  string
	env    []string
	config string
}

func newBox(t *testing.T, systemd bool) *box {
	t.Helper()
	b := &box{t: t, lapi: lapitest.Start(t), root: t.TempDir(), tools: t.TempDir()}
	b.config = filepath.Join(b.root, "etc/crowdsec/bouncers", name+".yaml")
	cscli := filepath.Join(b.tools, "cscli")
	script := fmt.Sprintf("#!/bin/sh\nexec %q -c %q \"$@\"\n", b.lapi.Bins.Cscli, b.lapi.ConfigPath())
	writeExec(t, cscli, script)
	systemctl := filepath.Join(b.tools, "systemctl")
	writeExec(t, systemctl, fmt.Sprintf("#!/bin/sh\necho \"$*\" >>%q\n", filepath.Join(b.tools, "systemctl.log")))
	useSystemd := "no"
	if systemd {
		useSystemd = "yes"
	}
	b.env = append(os.Environ(), "DESTDIR="+b.root, "CSCLI="+cscli, "SYSTEMCTL="+systemctl,
		"SYSTEMD="+useSystemd, "NONINTERACTIVE=1")
	return b
}

func writeExec(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
}

// script runs a packaging script and returns its combined output.
func (b *box) script(script string, extraEnv ...string) (string, error) {
	b.t.Helper()
	return b.run(script, "", nil, extraEnv...)
}

// run runs a packaging script with arguments and stdin (none if "") and
// returns its combined output.
func (b *box) run(script, stdin string, args []string, extraEnv ...string) (string, error) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", append([]string{filepath.Join(packaging, script)}, args...)...)
	cmd.Env = append(append([]string{}, b.env...), extraEnv...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if !bridgetest.AssertNoSecrets(b.t, string(out), apiKey) {
		b.t.Fatalf("%s printed the API key", script)
	}
	return string(out), err
}

func (b *box) mustScript(script string, extraEnv ...string) string {
	b.t.Helper()
	out, err := b.script(script, extraEnv...)
	if err != nil {
		b.t.Fatalf("%s: %v\n%s", script, err, out)
	}
	return out
}

func (b *box) bin() string { return filepath.Join(b.root, "usr/local/bin", name) }

func (b *box) runBin(args ...string) (string, error) {
	cmd := exec.Command(b.bin(), append([]string{"-c", b.config}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// names lists the names cscli shows for machines or bouncers.
func (b *box) names(kind string) []string {
	b.t.Helper()
	out := b.lapi.Cscli(b.t, kind, "list", "-o", "json")
	var rows []map[string]any
	if err := json.Unmarshal(out, &rows); err != nil {
		b.t.Fatalf("cscli %s list: %v\n%s", kind, err, out)
	}
	var names []string
	for _, r := range rows {
		for _, k := range []string{"machineId", "name"} {
			if s, ok := r[k].(string); ok {
				names = append(names, s)
			}
		}
	}
	return names
}

func contains(list []string, prefix string) bool {
	for _, s := range list {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}

// files lists the regular files under the root.
func (b *box) files() []string {
	var out []string
	filepath.WalkDir(b.root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out = append(out, strings.TrimPrefix(p, b.root))
		}
		return nil
	})
	return out
}

func mode(t *testing.T, path string) fs.FileMode {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return info.Mode().Perm()
}

// Install, sync, upgrade and uninstall without systemd: what a container
// or a CI machine does.
func TestInstallUpgradeUninstallWithoutSystemd(t *testing.T) {
	b := newBox(t, false)
	v1 := filepath.Join(binDir, "v1.0.0-test", name)
	out := b.mustScript("install.sh", "BIN_SRC="+v1, "APIBAN_API_KEY="+apiKey, "WITH_BOUNCER=1")
	if !strings.Contains(out, "systemd not used") {
		t.Errorf("install without systemd:\n%s", out)
	}
	if m := mode(t, b.config); m != 0o600 {
		t.Errorf("config mode %04o, want 0600", m)
	}
	if m := mode(t, b.bin()); m != 0o755 {
		t.Errorf("binary mode %04o, want 0755", m)
	}
	cfg, _ := os.ReadFile(b.config)
	for _, want := range []string{"api_key: '" + apiKey + "'", "lapi_url: '" + strings.TrimSuffix(b.lapi.URL, "/") + "'", "login: '" + name + "'"} {
		if !strings.Contains(string(cfg), want) {
			t.Errorf("config lacks %q:\n%s", want, cfg)
		}
	}
	unit, err := os.ReadFile(filepath.Join(b.root, "etc/systemd/system", name+".service"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Type=notify", "ExecStartPre=/usr/local/bin/" + name + " -c /etc/crowdsec/bouncers/" + name + ".yaml -t", "Restart=always"} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("unit lacks %q:\n%s", want, unit)
		}
	}
	dropin, err := os.ReadFile(filepath.Join(b.root, "etc/systemd/system", name+".service.d/bouncer.conf"))
	if err != nil || !strings.Contains(string(dropin), "\nAmbientCapabilities=CAP_NET_ADMIN\n") {
		t.Errorf("--with-bouncer: no drop-in granting CAP_NET_ADMIN: %v\n%s", err, dropin)
	}
	if out, err := b.runBin("-t"); err != nil {
		t.Fatalf("-t on the installed config: %v\n%s", err, out)
	}
	if !contains(b.names("machines"), name) {
		t.Errorf("machine %s not registered: %v", name, b.names("machines"))
	}
	id, err := os.ReadFile(b.config + ".id")
	if err != nil {
		t.Fatal(err)
	}
	bouncer := strings.TrimSpace(string(id))
	if !contains(b.names("bouncers"), bouncer) {
		t.Errorf("bouncer %s not registered: %v", bouncer, b.names("bouncers"))
	}

	// The installed bridge works against the LAPI: point it at a
	// simulator through the .local overlay, as an operator would.
	sim := apibansim.New(apibansim.Options{Key: apiKey, MaxRequests: apibansim.Unlimited})
	defer sim.Close()
	sim.Add(apibansim.PublicIPv4s(30, 5)...)
	overlay := bridgetest.Config{
		APIBAN:     bridgetest.APIBAN{URL: sim.URL(), MaxRequests: new(0)},
		StateFile:  filepath.Join(b.root, "var/lib", name, "state.json"),
		Prometheus: bridgetest.Prometheus{Enabled: new(false)},
		Bouncer:    bridgetest.Bouncer{Enabled: new(false)},
	}
	if err := os.WriteFile(b.config+".local", overlay.YAML(), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := b.runBin("--once"); err != nil {
		t.Fatalf("--once with the installed config: %v\n%s", err, out)
	}
	if n := len(b.lapi.Decisions(t, "apiban")); n != 30 {
		t.Fatalf("%d decisions after the sync, want 30", n)
	}

	// Upgrade: a binary that rejects the config changes nothing; a good
	// one replaces the old and keeps the config byte for byte.
	bad := filepath.Join(t.TempDir(), name)
	writeExec(t, bad, "#!/bin/sh\necho 'config: nope' >&2\nexit 1\n")
	if out, err := b.script("upgrade.sh", "BIN_SRC="+bad); err == nil || !strings.Contains(out, "nothing changed") {
		t.Fatalf("upgrade with a bad binary: %v\n%s", err, out)
	}
	if v, _ := b.runBin("-V"); !strings.Contains(v, "v1.0.0-test") {
		t.Fatalf("a failed upgrade replaced the binary: %s", v)
	}
	before, _ := os.ReadFile(b.config)
	out = b.mustScript("upgrade.sh", "BIN_SRC="+filepath.Join(binDir, "v2.0.0-test", name))
	if !strings.Contains(out, "v1.0.0-test -> "+name+" v2.0.0-test") {
		t.Errorf("upgrade output:\n%s", out)
	}
	if v, _ := b.runBin("-V"); !strings.Contains(v, "v2.0.0-test") {
		t.Fatalf("after upgrade: %s", v)
	}
	if after, _ := os.ReadFile(b.config); !bytes.Equal(before, after) || mode(t, b.config) != 0o600 {
		t.Fatal("upgrade changed the configuration or its mode")
	}

	out = b.mustScript("uninstall.sh", "PURGE_DECISIONS=1")
	if n := len(b.lapi.Decisions(t, "apiban")); n != 0 {
		t.Errorf("%d apiban decisions left after uninstall with PURGE_DECISIONS=1\n%s", n, out)
	}
	if contains(b.names("machines"), name) || contains(b.names("bouncers"), bouncer) {
		t.Errorf("registrations left: machines %v, bouncers %v", b.names("machines"), b.names("bouncers"))
	}
	if left := b.files(); len(left) > 0 {
		t.Errorf("files left in the root after uninstall: %v", left)
	}
}

// With systemd (a recording systemctl), install (taking the key from an
// apiban-iptables-client config.json) enables and starts the unit, upgrade
// restarts it, uninstall disables it; without cscli the installer still
// installs and says what to fill in.
func TestSystemdCallsAndNoCscli(t *testing.T) {
	b := newBox(t, true)
	v1 := filepath.Join(binDir, "v1.0.0-test", name)
	// The key comes from an apiban-iptables-client config.json.
	old := filepath.Join(t.TempDir(), "config.json")
	oldCfg := `{
	"APIKEY": "` + apiKey + `",
	"LKID": "1700000000",
	"VERSION": "0.7",
	"SET": "sip"
}`
	if err := os.WriteFile(old, []byte(oldCfg), 0o600); err != nil {
		t.Fatal(err)
	}
	b.mustScript("install.sh", "BIN_SRC="+v1, "APIBAN_CLIENT_CONFIG="+old)
	if cfg, _ := os.ReadFile(b.config); !strings.Contains(string(cfg), "api_key: '"+apiKey+"'") {
		t.Fatalf("the key from config.json is not in the config:\n%s", cfg)
	}
	b.mustScript("upgrade.sh", "BIN_SRC="+filepath.Join(binDir, "v2.0.0-test", name))
	b.mustScript("uninstall.sh")
	calls, _ := os.ReadFile(filepath.Join(b.tools, "systemctl.log"))
	want := "daemon-reload\nenable --now " + name + "\ndaemon-reload\nis-active --quiet " + name + "\nrestart " + name +
		"\ndisable --now " + name + "\ndaemon-reload\n"
	if string(calls) != want {
		t.Errorf("systemctl calls:\n%s\nwant:\n%s", calls, want)
	}
	if left := b.files(); len(left) > 0 {
		t.Errorf("files left: %v", left)
	}
	if contains(b.names("machines"), name) {
		t.Error("machine left after uninstall")
	}

	// No cscli: the binary and a config are installed, -t fails for the
	// missing password, and the installer says so.
	b.env = append(b.env, "CSCLI=/nonexistent/cscli")
	out, err := b.script("install.sh", "BIN_SRC="+v1, "APIBAN_API_KEY="+apiKey)
	if err == nil || !strings.Contains(out, "cscli not found") || !strings.Contains(out, "crowdsec.password") {
		t.Fatalf("install without cscli: %v\n%s", err, out)
	}
	if m := mode(t, b.config); m != 0o600 {
		t.Errorf("config mode %04o without cscli", m)
	}
	if out, err := b.script("install.sh", "BIN_SRC="+v1, "APIBAN_API_KEY="+apiKey); err == nil || !strings.Contains(out, "exists: use upgrade.sh") {
		t.Fatalf("install over an existing config: %v\n%s", err, out)
	}
	os.Remove(b.config)
	if out, err := b.script("install.sh", "BIN_SRC="+v1); err == nil || !strings.Contains(out, "no APIBAN key: give it with --api-key-file PATH or --api-key-stdin") {
		t.Fatalf("install without a key: %v\n%s", err, out)
	}
}
