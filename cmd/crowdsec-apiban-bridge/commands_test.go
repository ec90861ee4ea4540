package main

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bouncer"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bouncer/nftables"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/config"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/netns"
)

func TestParseSubcommands(t *testing.T) {
	cases := []struct {
		args    []string
		command string
		ok      bool
	}{
		{[]string{"status"}, "status", true},
		{[]string{"status", "-c", "/x.yaml"}, "status", true},
		{[]string{"-c", "/x.yaml", "check", "192.0.2.1"}, "check", true},
		{[]string{"check"}, "check", false},
		{[]string{"check", "a", "b"}, "check", false},
		{[]string{"flush", "extra"}, "flush", false},
		{[]string{"sync", "--full"}, "sync", true},
		{[]string{"nonsense"}, "nonsense", false},
	}
	for _, c := range cases {
		f, err := parseFlags(c.args, io.Discard)
		if (err == nil) != c.ok || f.command != c.command {
			t.Errorf("%v: command %q, err %v", c.args, f.command, err)
		}
	}
	f, _ := parseFlags([]string{"sync", "--full", "-c", "/y.yaml"}, io.Discard)
	if !f.once || !f.full || f.configPath != "/y.yaml" {
		t.Errorf("sync --full: %+v", f)
	}
}

func TestNotifier(t *testing.T) {
	path := filepath.Join(t.TempDir(), "n.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	env := map[string]string{"NOTIFY_SOCKET": path}
	newNotifier(func(k string) string { return env[k] }).send("READY=1")
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64)
	n, err := conn.Read(buf)
	if err != nil || string(buf[:n]) != "READY=1" {
		t.Fatalf("got %q, %v", buf[:n], err)
	}
	// Without NOTIFY_SOCKET nothing is sent and nothing fails.
	newNotifier(func(string) string { return "" }).send("READY=1")
}

func TestWatchdogInterval(t *testing.T) {
	me := strconv.Itoa(os.Getpid())
	cases := []struct {
		usec, pid string
		want      time.Duration
	}{
		{"", "", 0},
		{"junk", "", 0},
		{"2000000", "", time.Second},
		{"2000000", me, time.Second},
		{"2000000", "1", 0}, // the watchdog is another process's
	}
	for _, c := range cases {
		env := map[string]string{"WATCHDOG_USEC": c.usec, "WATCHDOG_PID": c.pid}
		if got := watchdogInterval(func(k string) string { return env[k] }); got != c.want {
			t.Errorf("%+v: %s", c, got)
		}
	}
}

// status reads the embedded bouncer's and the mirror's figures from one
// scrape of the daemon's /metrics.
func TestBouncerAndMirrorRows(t *testing.T) {
	scrapes := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scrapes++
		io.WriteString(w, `# HELP crowdsec_apiban_bridge_bouncer_kernel_elements x
crowdsec_apiban_bridge_bouncer_kernel_elements 1234
crowdsec_apiban_bridge_bouncer_active_decisions{origin="apiban"} 1200
crowdsec_apiban_bridge_bouncer_active_decisions{origin="crowdsec"} 40
crowdsec_apiban_bridge_bouncer_dropped_packets_total{ip_type="ipv4",origin="apiban"} 10
crowdsec_apiban_bridge_bouncer_dropped_packets_total{ip_type="ipv6",origin="crowdsec"} 2
crowdsec_apiban_bridge_bouncer_dropped_bytes_total{ip_type="ipv4",origin="apiban"} 1000
crowdsec_apiban_bridge_bouncer_dropped_bytes_total{ip_type="ipv6",origin="crowdsec"} 200
crowdsec_apiban_bridge_bouncer_resyncs_total 3
crowdsec_apiban_bridge_bouncer_resync_added_total 7
crowdsec_apiban_bridge_bouncer_resync_removed_total 2
crowdsec_apiban_bridge_mirror_set_size 900
crowdsec_apiban_bridge_mirror_requests_total{code="200",endpoint="banned"} 40
crowdsec_apiban_bridge_mirror_requests_total{code="400",endpoint="check"} 2
crowdsec_apiban_bridge_mirror_resyncs_total 0
crowdsec_apiban_bridge_mirror_resync_added_total 0
crowdsec_apiban_bridge_mirror_resync_removed_total 0
`)
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	host, port, _ := net.SplitHostPort(u.Host)
	cfg := config.Default()
	cfg.Prometheus.ListenAddr = host
	cfg.Prometheus.ListenPort, _ = strconv.Atoi(port)
	cfg.Bouncer.Enabled, cfg.Mirror.Enabled = true, true
	cfg.Mirror.Keys = []config.MirrorKey{{Name: "k1"}, {Name: "k2"}}
	m, err := scrapeMetrics(context.Background(), cfg.Prometheus.Addr())
	if err != nil {
		t.Fatal(err)
	}
	d := daemonView{metrics: m}
	rows := func(d daemonView) string {
		var b strings.Builder
		bouncerRows(cfg, d, &b)
		mirrorRows(cfg, d, &b)
		return b.String()
	}
	if got, want := rows(d), "bouncer sets\t1234 elements in the nftables sets (apiban-bridge-*), 1240 active decisions\n"+
		"bouncer drops\t12 packets, 1200 bytes since the daemon started (by origin and IP type on "+u.Host+"/metrics)\n"+
		"bouncer resyncs\t3 since the daemon started (every 1h): 7 added and 2 removed in all (what the stream had missed)\n"+
		"mirror\tenabled on 127.0.0.1:60604: 900 addresses and ranges served to 2 keys, 42 requests answered\n"+
		"mirror resyncs\tnone since the daemon started (every 15m)\n"; got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	if scrapes != 1 {
		t.Errorf("%d scrapes of /metrics, want 1", scrapes)
	}
	cfg.Bouncer.ResyncInterval = 0
	if got := rows(d); !strings.Contains(got, "bouncer resyncs\toff (bouncer.resync_interval is 0)\n") {
		t.Errorf("resync off:\n%s", got)
	}
	if got := rows(daemonView{why: "another process listens on " + u.Host}); got != "bouncer sets\tunknown (another process listens on "+u.Host+")\n"+
		"mirror\tenabled on 127.0.0.1:60604, set size unknown (another process listens on "+u.Host+")\n" {
		t.Errorf("not the daemon's figures:\n%s", got)
	}
	cfg.Bouncer.Enabled, cfg.Mirror.Enabled = false, false
	if got := rows(d); got != "bouncer sets\tn/a (bouncer.enabled is false)\nmirror\tn/a (mirror.enabled is false)\n" {
		t.Errorf("disabled:\n%s", got)
	}
}

// TestCheckKernelRows asks a real kernel, in a throw-away namespace,
// through the nftables backend as check builds it (plus the namespace).
func TestCheckKernelRows(t *testing.T) {
	bc := config.Default().Bouncer
	rows := func(addr string, open func(config.Bouncer) (bouncer.Backend, error)) string {
		var out strings.Builder
		kernelRows(context.Background(), bc, netip.MustParseAddr(addr), &out, open)
		return out.String()
	}
	if got := rows("192.0.2.1", nil); !strings.Contains(got, "n/a (bouncer.enabled is false)") {
		t.Errorf("disabled: %q", got)
	}
	bc.Enabled = true
	if got := rows("192.0.2.1", func(config.Bouncer) (bouncer.Backend, error) { return nil, errors.New("no netlink") }); !strings.Contains(got, "unknown: no netlink") {
		t.Errorf("backend error: %q", got)
	}

	netns.Require(t, "nft")
	ns := netns.New(t, "chk")
	open := func(bc config.Bouncer) (bouncer.Backend, error) {
		return nftables.New(nftables.Options{Table: bc.Table, SetPrefix: bc.SetPrefix, InputChain: bc.Chain + "-input", NetNSFd: ns.Fd()})
	}
	if got := rows("192.0.2.1", open); got != "kernel set\tnot loaded (bouncer not running, or disabled): no table inet apiban_bridge\n" {
		t.Errorf("before the bouncer: %q", got)
	}
	b, _ := open(bc)
	err := b.Reconcile(context.Background(), []bouncer.Element{
		{Prefix: netip.MustParsePrefix("198.51.100.0/24"), Timeout: 4 * time.Hour, Origin: "apiban"},
		{Prefix: netip.MustParsePrefix("192.0.2.1/32"), Timeout: time.Hour, Origin: "crowdsec"},
	})
	if err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[string]string{
		"198.51.100.9": `^kernel set  in apiban-bridge-apiban-v4-ranges \(198\.51\.100\.0/24, origin "apiban", (4h0m0s|3h59m5\ds) left\)\n$`,
		"192.0.2.1":    `^kernel set  in apiban-bridge-crowdsec-v4 \(192\.0\.2\.1/32, origin "crowdsec", (1h0m0s|59m5\ds) left\)\n$`,
		"192.0.2.2":    `^kernel set  not in the kernel sets \(nftables apiban-bridge-\*\)\n$`,
	} {
		var out strings.Builder
		tw := tabwriter.NewWriter(&out, 0, 4, 2, ' ', 0) // as runCommand
		kernelRows(context.Background(), bc, netip.MustParseAddr(addr), tw, open)
		tw.Flush()
		if !regexp.MustCompile(want).MatchString(out.String()) {
			t.Errorf("%s: %q, want %s", addr, out.String(), want)
		}
	}
}
