package install

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const (
	debConfig = "/etc/crowdsec/bouncers/" + name + ".yaml"
	debBin    = "/usr/bin/" + name
)

// The .deb from `make package` installs with dpkg on this (throw-away, CI)
// machine, registers its machine through cscli, passes -t, and a purge
// leaves neither files nor registrations. It refuses to run over an
// existing installation rather than clobber it.
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
	mk := exec.Command("make", "-C", "../..", "package", "VERSION=v1.2.3")
	if out, err := mk.CombinedOutput(); err != nil {
		t.Fatalf("make package: %v\n%s", err, out)
	}
	deb := filepath.Join("../../dist", name+"_1.2.3_"+goarch(t)+".deb")
	if _, err := os.Stat(deb); err != nil {
		t.Fatal(err)
	}
	copied := filepath.Join(dist, filepath.Base(deb))
	if data, err := os.ReadFile(deb); err != nil || os.WriteFile(copied, data, 0o644) != nil {
		t.Fatalf("copying %s: %v", deb, err)
	}

	b := newBox(t, false)
	dpkg := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("dpkg", args...)
		cmd.Env = append(append([]string{}, b.env...), "APIBAN_API_KEY="+apiKey, "DESTDIR=")
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
	dpkg("-i", copied)

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
	if err != nil || !strings.Contains(string(unit), "ExecStart=/usr/bin/"+name+" -c "+debConfig) {
		t.Errorf("unit: %v\n%s", err, unit)
	}

	dpkg("--purge", name)
	for _, p := range []string{debConfig, debBin, "/lib/systemd/system/" + name + ".service", "/var/lib/" + name, "/usr/lib/" + name} {
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
