// Command benchcluster is make bench's scale-out part (docs/scale-out.md,
// docs/benchmarks.md "Scale-out"):
//
//  1. a full sync of -size addresses into LAPI on PostgreSQL by the
//     bridge, against `cscli decisions import` of the same list into the
//     same kind of fresh database, -rounds times each; the medians and
//     their ratio (goal: bridge/import <= 1.0);
//  2. -bouncers embedded bouncers (the bridge binary in bouncer-only
//     mode, one process and one key each) pulling a -stream decision
//     stream from one LAPI: the time until all hold the full set in the
//     kernel, and LAPI's CPU meanwhile; beside as many plain go-cs-bouncer
//     StreamBouncer clients (one process, one key each) as the floor.
//
// Everything runs on loopback inside one network namespace of its own
// (PostgreSQL, LAPI, the bouncers), removed at the end. Needs root.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	csbouncer "github.com/crowdsecurity/go-cs-bouncer"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/apibansim"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/lapitest"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/pgtest"
)

const (
	lapiAddr = "127.0.0.1:8080"
	pgPort   = 5432
	password = "benchcluster-machine-password"
)

func main() {
	bridge := flag.String("bridge", "bin/crowdsec-apiban-bridge", "the bridge binary")
	size := flag.Int("size", 100000, "addresses of the full-sync comparison")
	rounds := flag.Int("rounds", 3, "rounds of each full sync (the median is reported)")
	bouncers := flag.Int("bouncers", 10, "embedded bouncers (and floor clients) pulling the stream")
	stream := flag.Int("stream", 100000, "decisions in the stream the bouncers pull")
	floor := flag.String("floor", "", "internal: run the floor clients with these comma-separated keys")
	flag.Parse()
	if *floor != "" {
		if err := floorClients(strings.Split(*floor, ","), *stream); err != nil {
			fmt.Fprintln(os.Stderr, "floor:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*bridge, *size, *rounds, *bouncers, *stream); err != nil {
		fmt.Fprintln(os.Stderr, "benchcluster:", err)
		os.Exit(1)
	}
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s  %s\n", time.Now().UTC().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func run(bridge string, size, rounds, bouncers, stream int) error {
	bridge, err := filepath.Abs(bridge)
	if err != nil {
		return err
	}
	ns := fmt.Sprintf("benchcluster-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		return fmt.Errorf("ip netns add: %v: %s", err, out)
	}
	defer exec.Command("ip", "netns", "del", ns).Run()
	if out, err := exec.Command("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		return fmt.Errorf("lo up: %v: %s", err, out)
	}
	db, err := pgtest.Start(ns, "127.0.0.1", pgPort)
	if err != nil {
		return err
	}
	defer db.Stop()
	work, err := os.MkdirTemp("", "benchcluster-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	e := &env{ns: ns, db: db, work: work, bridge: bridge}

	syncs, err := e.fullSyncs(size, rounds)
	if err != nil {
		return err
	}
	emb, flo, err := e.streams(bouncers, stream)
	if err != nil {
		return err
	}
	printTable(size, rounds, syncs, bouncers, stream, emb, flo)
	return nil
}

type env struct {
	ns, work, bridge string
	db               *pgtest.PG
	n                int
}

// freshLAPI gives a LAPI on a new, empty database.
func (e *env) freshLAPI() (*lapitest.LAPI, error) {
	if err := e.db.DropDB(); err != nil && !strings.Contains(err.Error(), "does not exist") {
		return nil, err
	}
	if err := e.db.CreateDB(); err != nil {
		return nil, err
	}
	e.n++
	return lapitest.LaunchWith(filepath.Join(e.work, fmt.Sprintf("lapi-%d", e.n)),
		lapitest.With{DBConfig: e.db.DBConfig(), Listen: lapiAddr, NetNS: e.ns})
}

type syncResult struct{ bridge, cscli []time.Duration }

// fullSyncs times the bridge's -once and cscli's import of the same list,
// each into a fresh database, and checks LAPI then holds every address.
func (e *env) fullSyncs(size, rounds int) (syncResult, error) {
	var r syncResult
	ips := apibansim.PublicIPv4s(size, 61)
	list := filepath.Join(e.work, "ips.txt")
	if err := os.WriteFile(list, []byte(strings.Join(ips, "\n")+"\n"), 0o600); err != nil {
		return r, err
	}
	for round := 1; round <= rounds; round++ {
		d, err := e.bridgeSync(ips, round)
		if err != nil {
			return r, err
		}
		r.bridge = append(r.bridge, d)
		logf("round %d: bridge full sync of %d into PostgreSQL: %s", round, size, d.Round(time.Millisecond))
		d, err = e.cscliImport(list, size)
		if err != nil {
			return r, err
		}
		r.cscli = append(r.cscli, d)
		logf("round %d: cscli decisions import of %d into PostgreSQL: %s", round, size, d.Round(time.Millisecond))
	}
	return r, nil
}

func (e *env) bridgeSync(ips []string, round int) (time.Duration, error) {
	l, err := e.freshLAPI()
	if err != nil {
		return 0, err
	}
	defer l.Stop()
	if _, err := l.AddMachineErr("crowdsec-apiban-bridge", password); err != nil {
		return 0, err
	}
	var sim *apibansim.Sim
	err = lapitest.InNetNS(e.ns, func() error {
		sim = apibansim.New(apibansim.Options{MaxRequests: apibansim.Unlimited})
		return nil
	})
	if err != nil {
		return 0, err
	}
	defer sim.Close()
	sim.Add(ips...)
	dir := filepath.Join(e.work, fmt.Sprintf("bridge-%d", round))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return 0, err
	}
	cfg := filepath.Join(dir, "bridge.yaml")
	body := fmt.Sprintf("apiban:\n  api_key: %s\n  url: %s\n  max_requests: 0\n  max_pages: 1048576\ncrowdsec:\n  lapi_url: %s\n  login: crowdsec-apiban-bridge\n  password: %s\ndecisions:\n  max_new_per_sync: 0\nstate_file: %s/state.json\nprometheus:\n  enabled: false\n",
		sim.Key(), sim.URL(), l.URL, password, dir)
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		return 0, err
	}
	d, out, err := timed(exec.Command("ip", "netns", "exec", e.ns, e.bridge, "-c", cfg, "-once"))
	if err != nil {
		return 0, err
	}
	if !strings.Contains(string(out), fmt.Sprintf("pushed=%d ", len(ips))) {
		return 0, fmt.Errorf("the bridge did not push %d:\n%s", len(ips), tailOf(out))
	}
	return d, e.holds("apiban", len(ips))
}

func (e *env) cscliImport(list string, size int) (time.Duration, error) {
	l, err := e.freshLAPI()
	if err != nil {
		return 0, err
	}
	defer l.Stop()
	argv := []string{"ip", "netns", "exec", e.ns, l.Bins.Cscli, "-c", l.ConfigPath(), "decisions", "import", "-i", list, "--format", "values", "-d", "168h"}
	d, _, err := timed(exec.Command(argv[0], argv[1:]...))
	if err != nil {
		return 0, err
	}
	return d, e.holds("cscli-import", size)
}

// holds checks, in PostgreSQL, one active decision per address of origin.
func (e *env) holds(origin string, n int) error {
	out, err := e.db.SQL("crowdsec", "select count(*) || ' ' || count(distinct value) from decisions where origin = '"+origin+"' and until > now()")
	if err != nil {
		return err
	}
	if want := fmt.Sprintf("%d %d", n, n); out != want {
		return fmt.Errorf("PostgreSQL holds %q active %s decisions (rows, addresses), want %q", out, origin, want)
	}
	return nil
}

// streamResult is one side of the stream comparison.
type streamResult struct {
	all     time.Duration   // until every client held the full set
	each    []time.Duration // per client
	lapiCPU time.Duration
}

// streams loads a stream-size list into one LAPI, then measures the
// embedded bouncers and the floor clients pulling it.
func (e *env) streams(n, size int) (emb, flo streamResult, err error) {
	l, err := e.freshLAPI()
	if err != nil {
		return emb, flo, err
	}
	defer l.Stop()
	list := filepath.Join(e.work, "stream.txt")
	if err := os.WriteFile(list, []byte(strings.Join(apibansim.PublicIPv4s(size, 62), "\n")+"\n"), 0o600); err != nil {
		return emb, flo, err
	}
	if _, err := l.CscliErr("decisions", "import", "-i", list, "--format", "values", "-d", "168h"); err != nil {
		return emb, flo, err
	}
	keys := func(prefix string) ([]string, error) {
		var ks []string
		for i := range n {
			k := fmt.Sprintf("benchcluster-%s-%02d-key-0123456789", prefix, i)
			if _, err := l.CscliErr("bouncers", "add", fmt.Sprintf("%s%02d", prefix, i), "-k", k); err != nil {
				return nil, err
			}
			ks = append(ks, k)
		}
		return ks, nil
	}
	ek, err := keys("emb")
	if err != nil {
		return emb, flo, err
	}
	fk, err := keys("floor")
	if err != nil {
		return emb, flo, err
	}
	logf("stream: %d embedded bouncers pulling %d decisions", n, size)
	if emb, err = e.embedded(l, ek, size); err != nil {
		return emb, flo, err
	}
	logf("stream: embedded: all %d hold %d in %s, LAPI CPU %s", n, size, emb.all.Round(time.Millisecond), emb.lapiCPU.Round(time.Millisecond))
	self, err := os.Executable()
	if err != nil {
		return emb, flo, err
	}
	cpu0 := cpuOf(l.PID())
	d, out, err := timed(exec.Command("ip", "netns", "exec", e.ns, self, "-floor", strings.Join(fk, ","), "-stream", strconv.Itoa(size)))
	if err != nil {
		return emb, flo, err
	}
	flo = streamResult{all: d, lapiCPU: cpuOf(l.PID()) - cpu0}
	for _, line := range strings.Fields(string(out)) {
		if v, err := time.ParseDuration(line); err == nil {
			flo.each = append(flo.each, v)
		}
	}
	logf("stream: floor: all %d hold %d in %s, LAPI CPU %s", n, size, flo.all.Round(time.Millisecond), flo.lapiCPU.Round(time.Millisecond))
	return emb, flo, nil
}

// embedded starts one bouncer-only bridge per key (own nftables names,
// all in the namespace) and waits until each has loaded the full set.
func (e *env) embedded(l *lapitest.LAPI, keys []string, size int) (streamResult, error) {
	var r streamResult
	want := fmt.Sprintf(`msg="bouncer: nftables sets loaded" component=bouncer elements=%d`, size)
	type proc struct {
		cmd *exec.Cmd
		out *syncBuffer
	}
	var procs []proc
	defer func() {
		for _, p := range procs {
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
		}
		for _, p := range procs {
			_ = p.cmd.Wait()
		}
	}()
	cpu0 := cpuOf(l.PID())
	start := time.Now()
	for i, key := range keys {
		dir := filepath.Join(e.work, fmt.Sprintf("emb-%02d", i))
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return r, err
		}
		cfg := filepath.Join(dir, "pbx.yaml")
		body := fmt.Sprintf("apiban:\n  enabled: false\ncrowdsec:\n  lapi_url: %s\nbouncer:\n  enabled: true\n  api_key: %s\n  table: bench%02d\n  set_prefix: bench%02d\n  chain: bench%02d\n  metrics_interval: 0s\nprometheus:\n  enabled: false\n",
			l.URL, key, i, i, i)
		if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
			return r, err
		}
		p := proc{cmd: exec.Command("ip", "netns", "exec", e.ns, e.bridge, "-c", cfg), out: &syncBuffer{}}
		p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
		if err := p.cmd.Start(); err != nil {
			return r, err
		}
		procs = append(procs, p)
	}
	r.each = make([]time.Duration, len(procs))
	deadline := start.Add(15 * time.Minute)
	for {
		done := 0
		for i, p := range procs {
			if r.each[i] == 0 && strings.Contains(p.out.String(), want) {
				r.each[i] = time.Since(start)
			}
			if r.each[i] != 0 {
				done++
			}
		}
		if done == len(procs) {
			break
		}
		if time.Now().After(deadline) {
			return r, fmt.Errorf("after 15 minutes %d of %d bouncers hold the set; one says:\n%s", done, len(procs), tailOf([]byte(procs[0].out.String())))
		}
		time.Sleep(50 * time.Millisecond)
	}
	r.all = slices.Max(r.each)
	r.lapiCPU = cpuOf(l.PID()) - cpu0
	return r, nil
}

// floorClients is the floor: one go-cs-bouncer StreamBouncer per key in
// this process, each until its first answer holds want decisions; it
// prints each client's time.
func floorClients(keys []string, want int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, len(keys))
	took := make([]time.Duration, len(keys))
	for i, key := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sb := &csbouncer.StreamBouncer{APIKey: key, APIUrl: "http://" + lapiAddr + "/", TickerInterval: "10s",
				UserAgent: "benchcluster-floor/1", Scopes: []string{"ip", "range"}}
			if err := sb.Init(); err != nil {
				errs <- err
				return
			}
			cctx, stop := context.WithCancel(ctx)
			defer stop()
			go func() { _ = sb.Run(cctx) }()
			got := 0
			for got < want {
				select {
				case resp := <-sb.Stream:
					if resp != nil {
						got += len(resp.New)
					}
				case <-ctx.Done():
					errs <- fmt.Errorf("client %d: %d of %d decisions", i, got, want)
					return
				}
			}
			took[i] = time.Since(start)
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	for _, d := range took {
		fmt.Println(d)
	}
	return nil
}

// cpuOf is a process's user+system CPU time so far (/proc/PID/stat).
func cpuOf(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseInt(f[11], 10, 64) // utime: field 14 of stat
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ
}

func timed(cmd *exec.Cmd) (time.Duration, []byte, error) {
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	if err != nil {
		return d, out.Bytes(), fmt.Errorf("%s: %w\n%s", strings.Join(cmd.Args, " "), err, tailOf(out.Bytes()))
	}
	return d, out.Bytes(), nil
}

func tailOf(b []byte) string {
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func printTable(size, rounds int, r syncResult, n, stream int, emb, flo streamResult) {
	b, c := median(r.bridge), median(r.cscli)
	fmt.Println("== scale-out (LAPI v1.7.8 on PostgreSQL 15)")
	fmt.Println("| what | result | goal |")
	fmt.Println("|---|---|---|")
	fmt.Printf("| full sync of %d into LAPI on PostgreSQL: bridge `-once`, median of %d | %s (runs %s) | |\n", size, rounds, b.Round(time.Millisecond), roundAll(r.bridge))
	fmt.Printf("| `cscli decisions import` of the same list, median of %d | %s (runs %s) | |\n", rounds, c.Round(time.Millisecond), roundAll(r.cscli))
	fmt.Printf("| ratio bridge / import | %.2f | <= 1.0 |\n", float64(b)/float64(c))
	fmt.Printf("| %d embedded bouncers (bouncer-only processes, own key each) until all hold %d in nftables | %s (first %s); LAPI CPU %s | |\n",
		n, stream, emb.all.Round(time.Millisecond), slices.Min(emb.each).Round(time.Millisecond), emb.lapiCPU.Round(time.Millisecond))
	fmt.Printf("| %d plain go-cs-bouncer StreamBouncer clients (floor) until all hold %d | %s; LAPI CPU %s | |\n",
		n, stream, flo.all.Round(time.Millisecond), flo.lapiCPU.Round(time.Millisecond))
}

func roundAll(ds []time.Duration) string {
	var s []string
	for _, d := range ds {
		s = append(s, d.Round(time.Millisecond).String())
	}
	return strings.Join(s, ", ")
}
