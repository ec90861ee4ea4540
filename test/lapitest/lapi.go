package lapitest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// LAPI is one running Local API with its own configuration and database.
type LAPI struct {
	Bins Binaries
	Dir  string
	URL  string // http://127.0.0.1:PORT/, or https:// with TLS
	addr string
	cmd  *exec.Cmd
	done chan struct{}
	log  *os.File

	// TLS holds the PKI of a LAPI started with StartTLS; nil otherwise.
	TLS *TLSFiles
	// health is the client of the readiness probe (trusts TLS.CA).
	health *http.Client
	// flushMaxItems, when set, is db_config.flush.max_items.
	flushMaxItems int
	// wrap prefixes crowdsec and cscli (ip netns exec NS; with.go).
	wrap []string
}

// Start builds (if needed) and starts a LAPI that is stopped at test end.
func Start(t testing.TB) *LAPI {
	t.Helper()
	l, err := Launch(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Stop)
	return l
}

// StartFlushing is Start with LAPI's alert flush keeping only the newest
// maxItems alerts (db_config.flush.max_items; 5,000 by default). The flush
// runs about once a minute and, up to v1.7.8, deletes the older alerts
// with their decisions, active or not.
func StartFlushing(t testing.TB, maxItems int) *LAPI {
	t.Helper()
	l, err := prepare(t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	l.flushMaxItems = maxItems
	if err := l.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Stop)
	return l
}

// Launch prepares a LAPI in dir (config, database, a machine for cscli)
// and starts it on a free loopback port. Stop it with Stop.
func Launch(dir string) (*LAPI, error) {
	return launch(dir, false)
}

func launch(dir string, withTLS bool) (*LAPI, error) {
	l, err := prepare(dir, withTLS)
	if err != nil {
		return nil, err
	}
	return l, l.start()
}

// prepare builds the binaries if needed and picks an address.
func prepare(dir string, withTLS bool) (*LAPI, error) {
	bins, err := EnsureBinaries()
	if err != nil {
		return nil, fmt.Errorf("crowdsec binaries: %w", err)
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	l := &LAPI{Bins: bins, Dir: dir, addr: addr, URL: "http://" + addr + "/", health: http.DefaultClient}
	if withTLS {
		if err := l.setupTLS(); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// start writes the configuration, registers cscli's machine and starts
// LAPI.
func (l *LAPI) start() error {
	if err := l.writeConfig(); err != nil {
		return err
	}
	// cscli talks to LAPI as this machine for `decisions list`.
	if err := l.addCscliMachine(); err != nil {
		return err
	}
	return l.Up()
}

// NewDatabase stops LAPI, removes its database and starts it again on a
// new, empty one at the same address, as a reinstall or a restore would
// leave it. Machines live in the database: cscli's is added again, the
// callers' must be too.
func (l *LAPI) NewDatabase(t testing.TB) {
	t.Helper()
	l.Stop()
	files, _ := filepath.Glob(l.path("data/crowdsec.db*"))
	for _, f := range files {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.start(); err != nil {
		t.Fatal(err)
	}
}

func (l *LAPI) path(name string) string { return filepath.Join(l.Dir, name) }

// ConfigPath is the crowdsec config.yaml, for cscli -c.
func (l *LAPI) ConfigPath() string { return l.path("config.yaml") }

// LogPath is where LAPI writes its log.
func (l *LAPI) LogPath() string { return l.path("lapi.log") }

func (l *LAPI) writeConfig() error {
	for _, d := range []string{"data", "hub", "notifications", "plugins"} {
		if err := os.MkdirAll(l.path(d), 0o755); err != nil {
			return err
		}
	}
	files := map[string]string{
		"config.yaml":     fmt.Sprintf(configTemplate, l.Dir, l.addr, l.flushSection()) + l.tlsSection(),
		"profiles.yaml":   profiles,
		"simulation.yaml": "simulation: off\n",
		"hub/.index.json": "{}\n",
	}
	for name, body := range files {
		if err := os.WriteFile(l.path(name), []byte(body), 0o600); err != nil {
			return err
		}
	}
	return nil
}

const configTemplate = `common:
  log_media: stdout
  log_level: info
config_paths:
  config_dir: %[1]s
  data_dir: %[1]s/data
  simulation_path: %[1]s/simulation.yaml
  hub_dir: %[1]s/hub
  index_path: %[1]s/hub/.index.json
  notification_dir: %[1]s/notifications
  plugin_dir: %[1]s/plugins
db_config:
  type: sqlite
  db_path: %[1]s/data/crowdsec.db
  use_wal: true
%[3]sapi:
  client:
    credentials_path: %[1]s/local_api_credentials.yaml
  server:
    listen_uri: %[2]s
    profiles_path: %[1]s/profiles.yaml
`

func (l *LAPI) flushSection() string {
	if l.flushMaxItems == 0 {
		return ""
	}
	return fmt.Sprintf("  flush:\n    max_items: %d\n", l.flushMaxItems)
}

const profiles = `name: default_ip_remediation
filters:
 - Alert.Remediation == true && Alert.GetScope() == "Ip"
decisions:
 - type: ban
   duration: 4h
on_success: break
`

// Restart starts LAPI again (after Stop) on the same address and database.
func (l *LAPI) Restart(t testing.TB) {
	t.Helper()
	if err := l.Up(); err != nil {
		t.Fatal(err)
	}
}

// Up starts the crowdsec process and waits until LAPI answers.
func (l *LAPI) Up() error {
	if l.cmd != nil {
		return fmt.Errorf("LAPI is already running")
	}
	logf, err := os.OpenFile(l.LogPath(), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	argv := l.wrapped(l.Bins.Crowdsec, "-c", l.ConfigPath(), "-no-cs")
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("starting LAPI: %w", err)
	}
	l.cmd, l.log, l.done = cmd, logf, make(chan struct{})
	go func() { cmd.Wait(); close(l.done) }()
	if err := l.waitHealthy(30 * time.Second); err != nil {
		l.Stop()
		return fmt.Errorf("LAPI did not come up: %w\n%s", err, l.tail())
	}
	return nil
}

func (l *LAPI) waitHealthy(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		select {
		case <-l.done:
			return fmt.Errorf("crowdsec exited")
		default:
		}
		resp, err := l.health.Get(l.URL + "health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("no healthy answer within %s", limit)
}

// Stop ends LAPI (SIGTERM, then SIGKILL after a grace period).
func (l *LAPI) Stop() {
	if l.cmd == nil {
		return
	}
	_ = l.cmd.Process.Signal(os.Interrupt)
	select {
	case <-l.done:
	case <-time.After(10 * time.Second):
		_ = l.cmd.Process.Kill()
		<-l.done
	}
	l.log.Close()
	l.cmd = nil
}

func (l *LAPI) tail() string {
	b, _ := os.ReadFile(l.LogPath())
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// Cscli runs cscli against this LAPI's configuration and returns stdout.
func (l *LAPI) Cscli(t testing.TB, args ...string) []byte {
	t.Helper()
	out, err := l.CscliErr(args...)
	if err != nil {
		t.Fatalf("cscli %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// CscliErr is Cscli returning the error instead of failing the test.
func (l *LAPI) CscliErr(args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	argv := l.wrapped(l.Bins.Cscli, append([]string{"-c", l.ConfigPath()}, args...)...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("%w: %s", err, stderr.String())
	}
	return stdout.Bytes(), nil
}

// AddMachine registers a validated machine and returns the credentials
// file cscli wrote (url, login, password).
func (l *LAPI) AddMachine(t testing.TB, name, password string) string {
	t.Helper()
	file, err := l.AddMachineErr(name, password)
	if err != nil {
		t.Fatal(err)
	}
	return file
}

// AddMachineErr is AddMachine returning the error.
func (l *LAPI) AddMachineErr(name, password string) (string, error) {
	file := l.path(name + "-credentials.yaml")
	_, err := l.CscliErr("machines", "add", name, "--password", password, "-f", file, "--force")
	return file, err
}

// Decision is one active decision as `cscli decisions list -o json` shows it.
type Decision struct {
	ID       int64  `json:"id"`
	Origin   string `json:"origin"`
	Scenario string `json:"scenario"`
	Scope    string `json:"scope"`
	Type     string `json:"type"`
	Value    string `json:"value"`
	Duration string `json:"duration"`
}

// Decisions lists active decisions of one origin through cscli. cscli
// lists every decision of an alert that still has an active one, the
// deleted ones too (with a negative duration): those are left out.
func (l *LAPI) Decisions(t testing.TB, origin string) []Decision {
	t.Helper()
	out := l.Cscli(t, "decisions", "list", "--origin", origin, "--limit", "0", "-o", "json")
	var alerts []struct {
		Decisions []Decision `json:"decisions"`
	}
	if err := json.Unmarshal(out, &alerts); err != nil {
		t.Fatalf("parsing cscli decisions list: %v\n%s", err, out)
	}
	var ds []Decision
	for _, a := range alerts {
		for _, d := range a.Decisions {
			if left, err := time.ParseDuration(d.Duration); err == nil && left <= 0 {
				continue
			}
			ds = append(ds, d)
		}
	}
	return ds
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// BouncerMetrics is `cscli metrics show bouncers -o json`: the bouncers'
// usage metrics that LAPI stored. cscli shows metrics only with prometheus
// enabled in its configuration, so it runs on a copy of LAPI's that says
// so (LAPI does not read the copy); the scrape of a local crowdsec it
// then tries fails, and cscli only warns about it.
func (l *LAPI) BouncerMetrics(t testing.TB) []byte {
	t.Helper()
	base, err := os.ReadFile(l.ConfigPath())
	if err != nil {
		t.Fatal(err)
	}
	cfg := l.path("config-cscli-metrics.yaml")
	withMetrics := append(base, "prometheus:\n  enabled: true\n  level: full\n  listen_addr: 127.0.0.1\n  listen_port: 9\n"...)
	if err := os.WriteFile(cfg, withMetrics, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, l.Bins.Cscli, "-c", cfg, "metrics", "show", "bouncers", "-o", "json").Output()
	if err != nil {
		t.Fatalf("cscli metrics show bouncers: %v", err)
	}
	return out
}
