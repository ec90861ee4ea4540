// Command benchmirror measures the bridge's APIBAN-compatible mirror:
// 50 concurrent clients each pulling a 100,000-entry mirror from the
// start, page by page, against a real LAPI and the bridge binary; pages
// per second, p99 page latency and the daemon's peak RSS, beside the
// floor: the same pages as static files served by Go's http.FileServer
// in this process, and by the same server in a process of its own (what
// a server pays for not sharing the clients' process). The timed pulls run once this process is warm (an
// untimed pull first): a cold client's growing heap costs the first pull
// some 2-3 ms of p99 whatever the server. Every client's pull is checked
// to hold the whole list exactly once.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/apibansim"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/bench/benchfmt"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/bridgetest"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/lapitest"
)

const (
	mirrorKey = "bench-mirror-key-0123456789abcdef"
	lapiKey   = "bench-mirror-lapi-key"
	password  = "bench-mirror-password"
)

func main() {
	bridge := flag.String("bridge", "bin/crowdsec-apiban-bridge", "the bridge binary")
	n := flag.Int("n", 100_000, "entries in LAPI")
	clients := flag.Int("clients", 50, "concurrent clients")
	static := flag.String("serve-static", "", "internal: only serve this directory with http.FileServer on -listen")
	listen := flag.String("listen", "", "with -serve-static")
	flag.Parse()
	if *static != "" {
		srv := &http.Server{Addr: *listen, Handler: http.FileServer(http.Dir(*static)), ReadHeaderTimeout: 5 * time.Second}
		fatalf("%v", srv.ListenAndServe())
	}
	dir, err := os.MkdirTemp("", "benchmirror-")
	if err != nil {
		fatalf("%v", err)
	}
	defer os.RemoveAll(dir)
	if err := run(*bridge, *n, *clients, dir); err != nil {
		fatalf("%v", err)
	}
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "benchmirror: "+format+"\n", args...)
	os.Exit(1)
}

func logf(format string, args ...any) { fmt.Fprintf(os.Stderr, "benchmirror: "+format+"\n", args...) }

func run(bridge string, n, clients int, dir string) error {
	l, err := lapitest.Launch(filepath.Join(dir, "lapi"))
	if err != nil {
		return err
	}
	defer l.Stop()
	if err := load(l, dir, n); err != nil {
		return err
	}
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	sim := apibansim.New(apibansim.Options{MaxRequests: apibansim.Unlimited})
	defer sim.Close()
	cfg := bridgetest.Config{
		APIBAN:     bridgetest.APIBAN{APIKey: sim.Key(), URL: sim.URL(), MaxRequests: new(0), PollInterval: time.Hour},
		CrowdSec:   bridgetest.CrowdSec{LAPIURL: l.URL, Login: "crowdsec-apiban-bridge", Password: password},
		StateFile:  filepath.Join(dir, "state.json"),
		Prometheus: bridgetest.Prometheus{Enabled: new(false)},
		Extra: fmt.Sprintf("mirror:\n  enabled: true\n  listen_addr: %s\n  keys: [{name: bench, key: %s}]\n  lapi_key: %s\n  max_requests: 0\n",
			addr, mirrorKey, lapiKey),
	}
	cfgPath := filepath.Join(dir, "bridge.yaml")
	if err := os.WriteFile(cfgPath, cfg.YAML(), 0o600); err != nil {
		return err
	}
	base := "http://" + addr
	// The first daemon run, without the binary's soft memory limit
	// (GOMEMLIMIT=off), is timed for its RSS only, for reference: its pull warms this process up (50 clients' maps of 100,000
	// entries grow its heap by some 450 MiB, with GC cycles and page
	// faults on the way), so that the mirror and the floor are both
	// measured with a warm client; the floor's pages are copied from it.
	var floorURL string
	var stop func()
	var cold result
	unlimited, err := daemon(bridge, cfgPath, dir, []string{"GOMEMLIMIT=off"}, func(int) error {
		if err := waitFull(base, n); err != nil {
			return err
		}
		var err error
		if cold, err = pullAll(base, clients, n); err != nil {
			return err
		}
		// The floor serves the very pages the mirror answered.
		floorURL, stop, err = staticFloor(base, filepath.Join(dir, "static"))
		return err
	})
	if err != nil {
		return err
	}
	defer stop()
	// A fresh daemon as it runs by default (its own soft memory limit):
	// its pages are encoded as the clients ask for them.
	var mirror result
	rss, err := daemon(bridge, cfgPath, dir, nil, func(pid int) error {
		if err := waitFull(base, n); err != nil {
			return err
		}
		var err error
		mirror, err = pullCPU(pid, base, clients, n)
		if err != nil {
			return fmt.Errorf("mirror: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	floor, err := pullAll(floorURL, clients, n)
	if err != nil {
		return fmt.Errorf("static floor: %w", err)
	}
	own, err := ownProcessFloor(filepath.Join(dir, "static"), clients, n)
	if err != nil {
		return fmt.Errorf("static floor in its own process: %w", err)
	}
	print(n, clients, []result{mirror, floor, own, cold}, rss, unlimited)
	return nil
}

// load imports n addresses (one origin, cscli-import) and adds the
// mirror's bouncer and the bridge's machine.
func load(l *lapitest.LAPI, dir string, n int) error {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "11.%d.%d.%d\n", i>>16, i>>8&255, i&255)
	}
	file := filepath.Join(dir, "ips.txt")
	if err := os.WriteFile(file, []byte(b.String()), 0o600); err != nil {
		return err
	}
	logf("importing %s decisions into LAPI", benchfmt.Num(n))
	if _, err := l.CscliErr("decisions", "import", "-i", file, "--format", "values", "-d", "168h"); err != nil {
		return err
	}
	if _, err := l.CscliErr("bouncers", "add", "bench-mirror", "-k", lapiKey); err != nil {
		return err
	}
	_, err := l.AddMachineErr("crowdsec-apiban-bridge", password)
	return err
}

// daemon runs the bridge with env added, calls work once the process is
// up, and returns its peak RSS, read before it is stopped.
func daemon(bridge, cfgPath, dir string, env []string, work func(pid int) error) (int64, error) {
	logFile, err := os.Create(filepath.Join(dir, "bridge.log"))
	if err != nil {
		return 0, err
	}
	defer logFile.Close()
	cmd := exec.Command(bridge, "-c", cfgPath)
	cmd.Env = append(withoutGOMEMLIMIT(os.Environ()), env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	defer func() { _ = cmd.Process.Signal(os.Interrupt); _ = cmd.Wait() }()
	if err := work(cmd.Process.Pid); err != nil {
		return 0, err
	}
	return peakRSS(cmd.Process.Pid)
}

// withoutGOMEMLIMIT drops a GOMEMLIMIT of the caller's, which would
// replace the binary's own limit in the run measured as the default.
func withoutGOMEMLIMIT(env []string) []string {
	return slices.DeleteFunc(slices.Clone(env), func(kv string) bool { return strings.HasPrefix(kv, "GOMEMLIMIT=") })
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// waitFull waits until the mirror serves n entries (LAPI's first stream
// answer is in).
func waitFull(base string, n int) error {
	deadline := time.Now().Add(10 * time.Minute)
	for time.Now().Before(deadline) {
		resp, err := http.Get(base + "/ipset/" + mirrorKey + "/list")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 && bytes.Count(body, []byte("\n")) == n {
				return nil
			}
		}
		time.Sleep(time.Second)
	}
	return errors.New("the mirror never served the whole list")
}

type result struct {
	pages     int
	wall      time.Duration
	latencies []time.Duration
	cpu       time.Duration // the server process's, when it has one of its own
}

func (r result) pagesPerSec() float64 { return float64(r.pages) / r.wall.Seconds() }

func (r result) p99() time.Duration {
	s := slices.Clone(r.latencies)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*99/100)]
}

// pullAll runs clients concurrent pulls of base from the start to the end
// of the list; each must get n distinct entries.
func pullAll(base string, clients, n int) (result, error) {
	hc := &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: clients * 2}}
	var mu sync.Mutex
	var res result
	var errs []error
	var wg sync.WaitGroup
	start := time.Now()
	for range clients {
		wg.Go(func() {
			lat, err := pullOne(hc, base, n)
			mu.Lock()
			defer mu.Unlock()
			res.latencies = append(res.latencies, lat...)
			res.pages += len(lat)
			errs = append(errs, err)
		})
	}
	wg.Wait()
	res.wall = time.Since(start)
	return res, errors.Join(errs...)
}

type page struct {
	IPAddress json.RawMessage `json:"ipaddress"`
	ID        string          `json:"ID"`
}

func pullOne(hc *http.Client, base string, n int) ([]time.Duration, error) {
	seen := make(map[string]struct{}, n)
	var lat []time.Duration
	cursor := "100"
	for {
		t0 := time.Now()
		resp, err := hc.Get(base + "/api/" + mirrorKey + "/banned/" + cursor)
		if err != nil {
			return lat, err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		lat = append(lat, time.Since(t0))
		if err != nil {
			return lat, err
		}
		var p page
		if err := json.Unmarshal(body, &p); err != nil {
			return lat, fmt.Errorf("page after %s: %w", cursor, err)
		}
		if p.ID == "none" {
			break
		}
		var ips []string
		if err := json.Unmarshal(p.IPAddress, &ips); err != nil {
			return lat, err
		}
		for _, ip := range ips {
			seen[ip] = struct{}{}
		}
		cursor = p.ID
	}
	if len(seen) != n {
		return lat, fmt.Errorf("a client pulled %d distinct entries, want %d", len(seen), n)
	}
	return lat, nil
}

// pullCPU is pullAll with the CPU time the server process pid spent
// meanwhile.
func pullCPU(pid int, base string, clients, n int) (result, error) {
	c0, err := cpuTime(pid)
	if err != nil {
		return result{}, err
	}
	res, err := pullAll(base, clients, n)
	if err != nil {
		return res, err
	}
	c1, err := cpuTime(pid)
	res.cpu = c1 - c0
	return res, err
}

// cpuTime is a process's user and system time so far (/proc/PID/stat,
// in clock ticks of 1/100 s, Linux's USER_HZ).
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The fields after the command name, which is in parentheses: the
	// 14th and 15th of the line are the 12th and 13th of these.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0, errors.New("short /proc/PID/stat")
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond, nil
}

// ownProcessFloor serves dir with http.FileServer from a process of its
// own (this binary with -serve-static) and pulls it as the mirror.
func ownProcessFloor(dir string, clients, n int) (result, error) {
	exe, err := os.Executable()
	if err != nil {
		return result{}, err
	}
	addr, err := freeAddr()
	if err != nil {
		return result{}, err
	}
	cmd := exec.Command(exe, "-serve-static", dir, "-listen", addr)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return result{}, err
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			return result{}, fmt.Errorf("it never listened on %s", addr)
		}
	}
	return pullCPU(cmd.Process.Pid, "http://"+addr, clients, n)
}

// staticFloor copies every page the mirror answers (the same bodies, the
// end-of-list one included) into files under dir, at the same paths, and
// serves them with http.FileServer.
func staticFloor(base, dir string) (string, func(), error) {
	pages := filepath.Join(dir, "api", mirrorKey, "banned")
	if err := os.MkdirAll(pages, 0o755); err != nil {
		return "", nil, err
	}
	cursor := "100"
	for {
		resp, err := http.Get(base + "/api/" + mirrorKey + "/banned/" + cursor)
		if err != nil {
			return "", nil, err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err := os.WriteFile(filepath.Join(pages, cursor), body, 0o644); err != nil {
			return "", nil, err
		}
		var p page
		if err := json.Unmarshal(body, &p); err != nil {
			return "", nil, err
		}
		if p.ID == "none" {
			break
		}
		cursor = p.ID
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: http.FileServer(http.Dir(dir)), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), func() { _ = srv.Shutdown(context.Background()) }, nil
}

// peakRSS is the process's high-water resident set (VmHWM).
func peakRSS(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmHWM in /proc/PID/status")
}

func print(n, clients int, r []result, rss, rssUnlimited int64) {
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "MISSED"
	}
	mirror, floor, own, cold := r[0], r[1], r[2], r[3]
	perK := func(x result) string {
		return fmt.Sprintf("%.0f ms", float64(x.cpu)/float64(time.Millisecond)/float64(x.pages)*1000)
	}
	fmt.Printf("\n%d clients pulling %s entries from the start (%d pages each)\n\n", clients, benchfmt.Num(n), mirror.pages/clients)
	fmt.Println("| measure | mirror (bridge daemon) | floor (static files, http.FileServer, in the clients' process) | the same floor in a process of its own | goal | |")
	fmt.Println("|---|---|---|---|---|---|")
	fmt.Printf("| pages per second | %.0f | %.0f | %.0f | | |\n", mirror.pagesPerSec(), floor.pagesPerSec(), own.pagesPerSec())
	fmt.Printf("| p99 page latency | %s | %s | %s | < 20 ms | %s |\n", benchfmt.Ms(mirror.p99()), benchfmt.Ms(floor.p99()), benchfmt.Ms(own.p99()),
		verdict(mirror.p99() < 20*time.Millisecond))
	fmt.Printf("| p99, the untimed first pull (a cold client process; the daemon with `GOMEMLIMIT=off`) | %s | | | | |\n", benchfmt.Ms(cold.p99()))
	fmt.Printf("| wall time | %s | %s | %s | | |\n", benchfmt.Secs(mirror.wall), benchfmt.Secs(floor.wall), benchfmt.Secs(own.wall))
	fmt.Printf("| server CPU per 1,000 pages | %s | | %s | | |\n", perK(mirror), perK(own))
	fmt.Printf("| daemon peak RSS (VmHWM), mirror on, as it runs by default (its own 64 MiB soft limit) | %.1f MiB | | | < 96 MiB | %s |\n", float64(rss)/(1<<20), verdict(rss < 96<<20))
	fmt.Printf("| the same with `GOMEMLIMIT=off` (no soft limit; for reference) | %.1f MiB | | | | |\n", float64(rssUnlimited)/(1<<20))
}
