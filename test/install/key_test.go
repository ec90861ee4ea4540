package install

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// procWatch reads every process's command line and environment, over and
// over, until stopped, and remembers which processes showed the secret.
type procWatch struct {
	secret []byte
	stop   chan struct{}
	done   chan struct{}
	mu     sync.Mutex
	seen   []string // "PID cmdline|environ: argv[0]"
	scans  int
}

func watchProcs(secret string) *procWatch {
	w := &procWatch{secret: []byte(secret), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			select {
			case <-w.stop:
				return
			default:
			}
			w.scan()
		}
	}()
	return w
}

func (w *procWatch) scan() {
	pids, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range pids {
		for _, f := range []string{"cmdline", "environ"} {
			data, err := os.ReadFile(filepath.Join(p, f))
			if err != nil || !bytes.Contains(data, w.secret) {
				continue
			}
			argv0, _ := os.ReadFile(filepath.Join(p, "comm"))
			w.mu.Lock()
			w.seen = append(w.seen, filepath.Base(p)+" "+f+": "+strings.TrimSpace(string(argv0)))
			w.mu.Unlock()
		}
	}
	w.mu.Lock()
	w.scans++
	w.mu.Unlock()
}

// Stop ends the watch and returns the processes that showed the secret
// and how many full scans of /proc were made.
func (w *procWatch) Stop() ([]string, int) {
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.seen, w.scans
}

// The watch sees a secret in a process's arguments: the check below can
// fail.
func TestProcWatchSeesArguments(t *testing.T) {
	w := watchProcs(apiKey)
	// Two commands, so bash does not exec sleep in its own place.
	cmd := exec.Command("bash", "-c", "sleep 30; exit 0", "bash", apiKey)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		w.mu.Lock()
		n := len(w.seen)
		w.mu.Unlock()
		if n > 0 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if seen, _ := w.Stop(); len(seen) == 0 {
		t.Fatal("a process with the secret in its arguments was not seen")
	}
}

// filesHolding lists the regular files under dirs whose content holds
// secret.
func filesHolding(t *testing.T, secret string, dirs ...string) []string {
	t.Helper()
	var out []string
	for _, dir := range dirs {
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return nil
			}
			if data, err := os.ReadFile(p); err == nil && bytes.Contains(data, []byte(secret)) {
				out = append(out, p)
			}
			return nil
		})
	}
	return out
}

// install.sh takes the APIBAN key from standard input (--api-key-stdin)
// and from a file (--api-key-file): while it runs no process shows the
// key in its arguments or environment, and afterwards the only file
// holding it (in the root and in the temporary directory the script
// uses) is the 0600 configuration.
func TestInstallKeyNeverOnCommandLine(t *testing.T) {
	b := newBox(t, false)
	v1 := filepath.Join(binDir, "v1.0.0-test", name)
	keyFile := filepath.Join(t.TempDir(), "apiban.key")
	// A key file from an editor on another system: CRLF and a stray blank.
	if err := os.WriteFile(keyFile, []byte(" "+apiKey+"\r\nsecond line\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		stdin string
		args  []string
	}{
		{"stdin", apiKey + "\n", []string{"--api-key-stdin", "--with-bouncer"}},
		{"file", "", []string{"--api-key-file", keyFile}},
		{"file=", "", []string{"--api-key-file=" + keyFile}},
	} {
		t.Run(c.name, func(t *testing.T) {
			tmp := t.TempDir()
			w := watchProcs(apiKey)
			out, err := b.run("install.sh", c.stdin, c.args, "BIN_SRC="+v1, "TMPDIR="+tmp)
			seen, scans := w.Stop()
			if err != nil {
				t.Fatalf("install.sh %s: %v\n%s", strings.Join(c.args, " "), err, out)
			}
			t.Logf("%d scans of /proc during the install", scans)
			if len(seen) > 0 {
				t.Errorf("processes showed the key: %v", seen)
			}
			cfg, _ := os.ReadFile(b.config)
			if !strings.Contains(string(cfg), "api_key: '"+apiKey+"'") {
				t.Errorf("the configuration lacks the key exactly as given")
			}
			if got := filesHolding(t, apiKey, b.root, tmp); len(got) != 1 || got[0] != b.config {
				t.Errorf("files holding the key: %v, want only %s", got, b.config)
			}
			if m := mode(t, b.config); m != 0o600 {
				t.Errorf("config mode %04o, want 0600", m)
			}
			if out, err := b.runBin("-t"); err != nil {
				t.Errorf("-t: %v\n%s", err, out)
			}
			b.mustScript("uninstall.sh")
		})
	}

	for _, c := range []struct {
		name, stdin, want string
		args              []string
	}{
		{"missing file", "", "--api-key-file: cannot read /nonexistent/key", []string{"--api-key-file", "/nonexistent/key"}},
		{"no path", "", "--api-key-file needs a path", []string{"--api-key-file"}},
		{"empty stdin", "\n", "--api-key-stdin: standard input held no key", []string{"--api-key-stdin"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, err := b.run("install.sh", c.stdin, c.args, "BIN_SRC="+v1)
			if err == nil || !strings.Contains(out, c.want) {
				t.Errorf("install.sh %s: %v, want %q in:\n%s", strings.Join(c.args, " "), err, c.want, out)
			}
			if _, err := os.Stat(b.config); err == nil {
				t.Error("a configuration was written without a key")
			}
		})
	}
}
