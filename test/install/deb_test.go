package install

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

const (
	debConfig = "/etc/crowdsec/bouncers/" + name + ".yaml"
	debBin    = "/usr/bin/" + name
	debMarker = debConfig + ".machine"
)

// The .deb from `make package` installs with dpkg on this (throw-away, CI)
// machine: it creates the service user and hands it the configuration and
// the state directory, takes the key from APIBAN_API_KEY_FILE, registers
// its machine through cscli once (an upgrade never does it again), passes
// -t, and a purge leaves neither files nor registrations. It refuses to
// run over an existing installation rather than clobber it.
func TestDebInstallsAndPurges(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("dpkg -i needs root (CI runs as root)")
	}
	if _, err := os.Stat(debConfig); err == nil {
		t.Fatalf("%s exists: this machine has the bridge installed; not touching it", debConfig)
	}
	if exec.Command("dpkg", "-s", name).Run() == nil {
		t.Fatalf("package %s is installed on this machine; not touching it", name)
	}
	dist := t.TempDir()
	debs := map[string]string{}
	for _, v := range []string{"1.2.3", "1.2.4"} {
		mk := exec.Command("make", "-C", "../..", "package", "VERSION=v"+v)
		if out, err := mk.CombinedOutput(); err != nil {
			t.Fatalf("make package: %v\n%s", err, out)
		}
		deb := filepath.Join("../../dist", name+"_"+v+"_"+goarch(t)+".deb")
		copied := filepath.Join(dist, filepath.Base(deb))
		if data, err := os.ReadFile(deb); err != nil || os.WriteFile(copied, data, 0o644) != nil {
			t.Fatalf("copying %s: %v", deb, err)
		}
		debs[v] = copied
	}
	keyFile := filepath.Join(t.TempDir(), "apiban.key")
	if err := os.WriteFile(keyFile, []byte(apiKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	b := newBox(t, false)
	dpkg := func(env []string, args ...string) string {
		t.Helper()
		cmd := exec.Command("dpkg", args...)
		cmd.Env = append(append(append([]string{}, b.env...), "DESTDIR="), env...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("dpkg %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		if strings.Contains(string(out), apiKey) {
			t.Fatalf("dpkg output shows the API key:\n%s", out)
		}
		return string(out)
	}
	t.Cleanup(func() { exec.Command("dpkg", "--purge", name).Run() })
	// The package leaves its system user on purge, as Debian packages do;
	// the test leaves the machine as it found it.
	if _, err := user.Lookup(name); err != nil {
		t.Cleanup(func() { exec.Command("userdel", name).Run() })
	}
	dpkg([]string{"APIBAN_API_KEY_FILE=" + keyFile}, "-i", debs["1.2.3"])

	if cfg, _ := os.ReadFile(debConfig); !strings.Contains(string(cfg), "api_key: '"+apiKey+"'") {
		t.Error("the key from APIBAN_API_KEY_FILE is not in the configuration")
	}
	if marker, err := os.ReadFile(debMarker); err != nil || strings.TrimSpace(string(marker)) != name {
		t.Errorf("registration marker %s: %v %q", debMarker, err, marker)
	}
	for _, p := range []string{debConfig, "/var/lib/" + name} {
		if owner := ownerName(t, p); owner != name {
			t.Errorf("%s is owned by %q, want the service user %s", p, owner, name)
		}
	}
	if owner := ownerName(t, debMarker); owner != "root" {
		t.Errorf("%s is owned by %q, want root", debMarker, owner)
	}
	password := configPassword(t)
	if !machineLogin(t, b.lapi.URL, password) {
		t.Fatal("the machine postinst registered cannot log in with the configuration's password")
	}

	if m := mode(t, debConfig); m != 0o600 {
		t.Errorf("%s mode %04o, want 0600", debConfig, m)
	}
	if out, err := exec.Command(debBin, "-c", debConfig, "-t").CombinedOutput(); err != nil {
		t.Fatalf("-t after dpkg -i: %v\n%s", err, out)
	}
	if v, _ := exec.Command(debBin, "-V").Output(); !strings.Contains(string(v), "v1.2.3") {
		t.Errorf("-V: %s", v)
	}
	if !contains(b.names("machines"), name) {
		t.Errorf("postinst registered no machine: %v", b.names("machines"))
	}
	unit, err := os.ReadFile("/lib/systemd/system/" + name + ".service")
	if err != nil || !strings.Contains(string(unit), "ExecStart=/usr/bin/"+name+" -c "+debConfig) ||
		!strings.Contains(string(unit), "\nUser="+name+"\n") {
		t.Errorf("unit: %v\n%s", err, unit)
	}

	// Upgrades with the password left to the environment: the config
	// keeps the placeholder, CROWDSEC_APIBAN_PASSWORD holds the password.
	// Neither an upgrade from a package that kept its marker in the state
	// directory nor one with no marker at all registers the machine again
	// (that would give it a new password the environment does not hold).
	cfg, _ := os.ReadFile(debConfig)
	placeholder := regexp.MustCompile(`(?m)^  password: .*$`).ReplaceAll(cfg, []byte("  password: ${CROWDSEC_APIBAN_PASSWORD}"))
	if err := os.WriteFile(debConfig, placeholder, 0o600); err != nil {
		t.Fatal(err)
	}
	envPassword := []string{"CROWDSEC_APIBAN_PASSWORD=" + password}
	for _, c := range []struct{ what, deb, oldMarker string }{
		{"upgrade from a package with the marker in the state directory", debs["1.2.4"], "/var/lib/" + name + "/machine"},
		{"upgrade with no marker", debs["1.2.4"], ""},
	} {
		marker, _ := os.ReadFile(debMarker)
		os.Remove(debMarker)
		if c.oldMarker != "" {
			if err := os.WriteFile(c.oldMarker, marker, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		out := dpkg(envPassword, "-i", c.deb)
		if !machineLogin(t, b.lapi.URL, password) {
			t.Errorf("%s: the machine's password was reset\n%s", c.what, out)
		}
		if got, _ := os.ReadFile(debConfig); !bytes.Equal(got, placeholder) {
			t.Errorf("%s: the configuration changed:\n%s", c.what, got)
		}
		if c.oldMarker != "" {
			if got, err := os.ReadFile(debMarker); err != nil || !bytes.Equal(got, marker) {
				t.Errorf("%s: marker not moved to %s: %v %q", c.what, debMarker, err, got)
			}
			if _, err := os.Stat(c.oldMarker); err == nil {
				t.Errorf("%s: %s left in the service user's directory", c.what, c.oldMarker)
			}
		} else if err := os.WriteFile(debMarker, marker, 0o600); err != nil { // for the purge
			t.Fatal(err)
		}
	}
	if v, _ := exec.Command(debBin, "-V").Output(); !strings.Contains(string(v), "v1.2.4") {
		t.Errorf("-V after the upgrade: %s", v)
	}

	dpkg(nil, "--purge", name)
	for _, p := range []string{debConfig, debMarker, debBin, "/lib/systemd/system/" + name + ".service", "/var/lib/" + name, "/usr/lib/" + name} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s remains after purge", p)
		}
	}
	if contains(b.names("machines"), name) {
		t.Error("machine remains after purge")
	}
}

func goarch(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOARCH").Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

func ownerName(t *testing.T, path string) string {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	u, err := user.LookupId(strconv.Itoa(int(info.Sys().(*syscall.Stat_t).Uid)))
	if err != nil {
		t.Fatal(err)
	}
	return u.Username
}

// configPassword is crowdsec.password as postinst wrote it.
func configPassword(t *testing.T) string {
	t.Helper()
	cfg, err := os.ReadFile(debConfig)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^  password: '([^']+)'`).FindSubmatch(cfg)
	if m == nil {
		t.Fatal("no crowdsec.password in the configuration")
	}
	return string(m[1])
}

// machineLogin reports whether LAPI accepts the machine's password.
func machineLogin(t *testing.T, lapiURL, password string) bool {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"machine_id": name, "password": password, "scenarios": []string{}})
	resp, err := http.Post(strings.TrimSuffix(lapiURL, "/")+"/v1/watchers/login", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
