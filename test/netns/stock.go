package netns

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/cache"
)

// StockUpstream is the crowdsec-firewall-bouncer release that Debian
// bookworm ships (0.0.25-4~deb12u1) and that the coexistence test expects.
const StockUpstream = "0.0.25"

// StockPackage is Debian's crowdsec-firewall-bouncer package, downloaded
// with `apt-get download` and unpacked with `dpkg-deb -x` into a cache
// directory: never installed, so nothing on the machine changes.
type StockPackage struct {
	Version string // the .deb's Version field, e.g. 0.0.25-4~deb12u1
	Root    string // the unpacked tree
	Binary  string // Root/usr/bin/crowdsec-firewall-bouncer
	Config  string // Root/etc/crowdsec/bouncers/crowdsec-firewall-bouncer.yaml
}

// StockCacheDir is $CROWDSEC_FW_BOUNCER_DIR, or
// ~/.cache/crowdsec-apiban-bridge/crowdsec-firewall-bouncer-debian.
func StockCacheDir() (string, error) {
	return cache.Dir("CROWDSEC_FW_BOUNCER_DIR", "crowdsec-firewall-bouncer-debian")
}

// DebianStockBouncer returns the cached package, downloading and
// unpacking it first when needed (apt-get update only if the download
// fails). A file lock keeps concurrent test binaries from downloading
// twice. A package whose upstream version is not StockUpstream is an
// error: the tests name its objects.
func DebianStockBouncer() (StockPackage, error) {
	dir, err := StockCacheDir()
	if err != nil {
		return StockPackage{}, err
	}
	unpacked := func() bool { _, ok := cachedStock(dir); return ok }
	if err := cache.Fill(dir, unpacked, func() error { return fetchStock(dir) }); err != nil {
		return StockPackage{}, fmt.Errorf("crowdsec-firewall-bouncer from Debian: %w", err)
	}
	p, ok := cachedStock(dir)
	if !ok {
		return StockPackage{}, fmt.Errorf("crowdsec-firewall-bouncer: %s incomplete after unpacking", dir)
	}
	return p, nil
}

// cachedStock reads the cache; the VERSION file is written last.
func cachedStock(dir string) (StockPackage, bool) {
	v, err := os.ReadFile(filepath.Join(dir, "VERSION"))
	if err != nil {
		return StockPackage{}, false
	}
	root := filepath.Join(dir, "root")
	p := StockPackage{Version: strings.TrimSpace(string(v)), Root: root,
		Binary: filepath.Join(root, "usr", "bin", "crowdsec-firewall-bouncer"),
		Config: filepath.Join(root, "etc", "crowdsec", "bouncers", "crowdsec-firewall-bouncer.yaml")}
	for _, f := range []string{p.Binary, p.Config} {
		if _, err := os.Stat(f); err != nil {
			return StockPackage{}, false
		}
	}
	return p, true
}

func fetchStock(dir string) error {
	tmp, err := os.MkdirTemp(dir, "fetch-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	download := func() error {
		cmd := exec.Command("apt-get", "download", "crowdsec-firewall-bouncer")
		cmd.Dir = tmp
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("apt-get download: %w\n%s", err, out)
		}
		return nil
	}
	if err := download(); err != nil {
		if out, uerr := exec.Command("apt-get", "update", "-qq").CombinedOutput(); uerr != nil {
			return errors.Join(err, fmt.Errorf("apt-get update: %w\n%s", uerr, out))
		}
		if err := download(); err != nil {
			return err
		}
	}
	debs, err := filepath.Glob(filepath.Join(tmp, "crowdsec-firewall-bouncer_*.deb"))
	if err != nil || len(debs) != 1 {
		return fmt.Errorf("apt-get download left %v (%v)", debs, err)
	}
	out, err := exec.Command("dpkg-deb", "-f", debs[0], "Version").Output()
	if err != nil {
		return fmt.Errorf("dpkg-deb -f: %w", err)
	}
	version := strings.TrimSpace(string(out))
	if !strings.HasPrefix(version, StockUpstream+"-") {
		return fmt.Errorf("the archive has version %s; the tests expect upstream %s", version, StockUpstream)
	}
	if out, err := exec.Command("dpkg-deb", "-x", debs[0], filepath.Join(tmp, "root")).CombinedOutput(); err != nil {
		return fmt.Errorf("dpkg-deb -x: %w\n%s", err, out)
	}
	if err := os.RemoveAll(filepath.Join(dir, "root")); err != nil {
		return err
	}
	if err := os.Rename(filepath.Join(tmp, "root"), filepath.Join(dir, "root")); err != nil {
		return err
	}
	if err := os.Rename(debs[0], filepath.Join(dir, filepath.Base(debs[0]))); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "VERSION"), []byte(version+"\n"), 0o644)
}
