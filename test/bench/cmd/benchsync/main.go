// Command benchsync measures the sync half of issue 6 end to end, on
// loopback only: full syncs of a simulated APIBAN list into a real
// CrowdSec LAPI by the bridge, by `cscli decisions import` and by one
// `cscli decisions add` per address; an incremental sync; the bridge's
// peak RSS and state file; and the APIBAN requests a pull costs, with and
// without pacing against the service's rate limit. Every number is
// checked (decisions in LAPI, requests sent, 429s) before it is printed.
// test/bench/run.sh runs it after the Go benchmarks and passes their
// output with -gobench, so that one table holds everything.
package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/apibansim"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/bench/benchfmt"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/bridgetest"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/lapitest"
)

// bridgeBin is the absolute path of the bridge binary under test.
var bridgeBin string

// timeBin is GNU time, which measures each contender's peak RSS.
const timeBin = "/usr/bin/time"

type options struct {
	bridge      string
	sizes       []int
	adds        int
	incremental int
	rounds      int
	gobench     string
	kernel      string
	pacingN     int
	skipCscli   bool
	memLimit    string
	keep        bool
	cpuProfile  string
}

func main() {
	var o options
	sizes := flag.String("sizes", "10000,100000", "list sizes of the full-sync comparison")
	flag.StringVar(&o.bridge, "bridge", "bin/crowdsec-apiban-bridge", "bridge binary")
	flag.IntVar(&o.adds, "adds", 200, "`cscli decisions add` runs timed (then scaled to each size)")
	flag.IntVar(&o.incremental, "new", 10, "new addresses of the incremental sync")
	flag.IntVar(&o.rounds, "rounds", 5, "incremental syncs timed (each with new addresses); the median is reported")
	flag.StringVar(&o.gobench, "gobench", "", "output of `go test -bench` to fold into the table")
	flag.StringVar(&o.kernel, "kernel", "", "rows of benchkernel -rows (items 3 and 4) to fold into the table")
	flag.IntVar(&o.pacingN, "pacing-n", 5000, "entries pulled in the pacing check (N/250+1 requests)")
	flag.BoolVar(&o.skipCscli, "skip-cscli", false, "leave out the cscli contenders (development runs)")
	flag.StringVar(&o.memLimit, "memlimit", "40MiB", "also run the largest full sync with this GOMEMLIMIT (\"\" to skip)")
	flag.BoolVar(&o.keep, "keep", false, "keep the work directory")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the bridge's full sync of the largest size to this file (and its heap profile to this file.heap)")
	flag.Parse()
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			fatalf("bad -sizes %q", *sizes)
		}
		o.sizes = append(o.sizes, n)
	}
	if _, err := os.Stat(timeBin); err != nil {
		fatalf("%s: %v (install Debian's time package)", timeBin, err)
	}
	if _, err := os.Stat(o.bridge); err != nil {
		fatalf("bridge binary: %v (run `make build`)", err)
	}
	var err error
	if bridgeBin, err = filepath.Abs(o.bridge); err != nil {
		fatalf("%v", err)
	}
	dir, err := os.MkdirTemp("", "apiban-bench-")
	if err != nil {
		fatalf("%v", err)
	}
	if !o.keep {
		defer os.RemoveAll(dir)
	}
	t := &table{}
	err = run(o, dir, t)
	t.print(os.Stdout)
	if err != nil {
		if o.keep {
			fmt.Fprintln(os.Stderr, "work directory kept:", dir)
		}
		fmt.Fprintln(os.Stderr, "benchsync:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "benchsync: "+format+"\n", args...)
	os.Exit(1)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s  "+format+"\n", append([]any{time.Now().UTC().Format("15:04:05")}, args...)...)
}

func run(o options, dir string, t *table) error {
	if _, err := lapitest.EnsureBinaries(); err != nil {
		return err
	}
	// Item 1, 2 and 5: the bridge, then the cscli contenders, per size.
	var perAdd time.Duration
	if !o.skipCscli {
		d, err := perIPAdds(filepath.Join(dir, "adds"), o.adds)
		if err != nil {
			return fmt.Errorf("cscli decisions add: %w", err)
		}
		perAdd = d
	}
	for _, n := range o.sizes {
		ips := apibansim.PublicIPv4s(n+o.rounds*o.incremental, 6)
		profile := ""
		if n == slices.Max(o.sizes) {
			profile = o.cpuProfile
		}
		b, err := bridgeRuns(filepath.Join(dir, fmt.Sprintf("bridge-%d", n)), ips[:n], ips[n:], o.incremental, nil, profile)
		if err != nil {
			return fmt.Errorf("bridge, %d addresses: %w", n, err)
		}
		row := fullRow{n: n, bridge: b.full}
		if !o.skipCscli {
			imp, err := cscliImport(filepath.Join(dir, fmt.Sprintf("import-%d", n)), ips[:n])
			if err != nil {
				return fmt.Errorf("cscli decisions import, %d addresses: %w", n, err)
			}
			row.imp = imp
			row.perAdd = perAdd
		}
		t.full = append(t.full, row)
		t.incr = append(t.incr, b.incr)
	}
	// Item 5: the same full sync with a soft memory limit for the Go
	// runtime, the remedy docs/benchmarks.md discusses for peak RSS.
	if n := slices.Max(o.sizes); o.memLimit != "" {
		env := []string{"GOMEMLIMIT=" + o.memLimit}
		b, err := bridgeRuns(filepath.Join(dir, fmt.Sprintf("bridge-%d-memlimit", n)), apibansim.PublicIPv4s(n, 6), nil, o.incremental, env, "")
		if err != nil {
			return fmt.Errorf("bridge with %s, %d addresses: %w", env[0], n, err)
		}
		t.limited = &limitedRow{n: n, env: env[0], bridge: b.full}
	}
	// Item 6.
	eff, err := requestEfficiency([]int{0, 1, 249, 250, 251, 500, 10_000})
	if err != nil {
		return fmt.Errorf("request efficiency: %w", err)
	}
	t.requests = eff
	pace, err := pacing(o.pacingN)
	if err != nil {
		return fmt.Errorf("pacing: %w", err)
	}
	t.pacing = pace
	if o.gobench != "" {
		gb, err := parseGoBench(o.gobench)
		if err != nil {
			return err
		}
		t.gobench = gb
	}
	if o.kernel != "" {
		rows, err := parseKernelRows(o.kernel)
		if err != nil {
			return err
		}
		t.kernel = rows
	}
	return nil
}

// parseKernelRows reads benchkernel's rows: item, measure, result, target
// and verdict, tab-separated, one row a line.
func parseKernelRows(path string) ([][5]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("kernel rows: %w", err)
	}
	var rows [][5]string
	for _, line := range strings.Split(string(data), "\n") {
		if line == "" {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 5 {
			return nil, fmt.Errorf("kernel rows: %s: %q is not 5 tab-separated fields", path, line)
		}
		rows = append(rows, [5]string(f))
	}
	return rows, nil
}

// measured is one timed process.
type measured struct {
	wall      time.Duration
	user, sys time.Duration
	maxRSS    int64 // bytes
}

func (m measured) cpu() time.Duration { return m.user + m.sys }

// runTimed runs cmd and reports its wall time and rusage. The peak RSS
// comes from GNU time (Debian's time package) run between this process
// and cmd: Linux carries a process's peak RSS across exec, so cmd started
// from here reports at least this process's own (a million generated
// addresses and the simulator's list: about 280 MiB).
func runTimed(cmd *exec.Cmd) (measured, []byte, error) {
	rssFile, err := os.CreateTemp("", "benchsync-rss-")
	if err != nil {
		return measured{}, nil, err
	}
	rssFile.Close()
	defer os.Remove(rssFile.Name())
	name := cmd.Path
	cmd.Args = append([]string{timeBin, "-f", "%M", "-o", rssFile.Name(), "--", cmd.Path}, cmd.Args[1:]...)
	cmd.Path = timeBin
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err = cmd.Run()
	m := measured{wall: time.Since(start)}
	if cmd.ProcessState != nil {
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			// time's own CPU is a few system calls; cmd's is folded in.
			m.user = time.Duration(ru.Utime.Nano())
			m.sys = time.Duration(ru.Stime.Nano())
		}
	}
	if b, rerr := os.ReadFile(rssFile.Name()); rerr == nil {
		lines := strings.Fields(string(b))
		if len(lines) > 0 {
			kb, _ := strconv.ParseInt(lines[len(lines)-1], 10, 64)
			m.maxRSS = kb * 1024
		}
	}
	cmd.Path = name
	if err != nil {
		return m, out.Bytes(), fmt.Errorf("%s: %w\n%s", filepath.Base(cmd.Path), err, tail(out.Bytes()))
	}
	return m, out.Bytes(), nil
}

func tail(b []byte) string {
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}

func randomHex() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// countDecisions counts the active decisions of origin in LAPI (raw
// output is CSV with one header line).
func countDecisions(l *lapitest.LAPI, origin string) (int, error) {
	out, err := cscli(l, 10*time.Minute, "decisions", "list", "--origin", origin, "--limit", "0", "-o", "raw")
	if err != nil {
		return 0, err
	}
	s := bufio.NewScanner(bytes.NewReader(out))
	n := -1
	for s.Scan() {
		if strings.TrimSpace(s.Text()) != "" {
			n++
		}
	}
	return max(n, 0), nil
}

func cscli(l *lapitest.LAPI, limit time.Duration, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, l.Bins.Cscli, append([]string{"-c", l.ConfigPath()}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("cscli %s: %w: %s", strings.Join(args, " "), err, tail(stderr.Bytes()))
	}
	return stdout.Bytes(), nil
}

// bridgeResult holds the two runs of the bridge against one LAPI.
type bridgeResult struct {
	full fullBridge
	incr incrRow
}

type fullBridge struct {
	measured
	requests, wantRequests int
	stateBytes             int64
}

type incrRow struct {
	known, added     int
	requests, pushed []int // per round
	lapiTotal        int
	runs             []measured
	stateBytes       int64
}

// median is the run of median CPU time.
func (r incrRow) median() measured {
	runs := slices.Clone(r.runs)
	slices.SortFunc(runs, func(a, b measured) int { return cmp.Compare(a.cpu(), b.cpu()) })
	return runs[len(runs)/2]
}

func (r incrRow) maxRSS() int64 {
	var m int64
	for _, run := range r.runs {
		m = max(m, run.maxRSS)
	}
	return m
}

const apiKey = "bench-key-6c1f0e"

// bridgeRuns: a fresh LAPI and simulator; a full sync of known, checked;
// then, per round, perRound more of added appear in the list and a sync
// must fetch them with one request and push only them.
// A non-empty profile gets a CPU profile of the full sync (not of the
// incremental ones) through the bridge's benchmark-only variable.
func bridgeRuns(dir string, known, added []string, perRound int, env []string, profile string) (bridgeResult, error) {
	var r bridgeResult
	logf("bridge: full sync of %d addresses into a fresh LAPI %s", len(known), strings.Join(env, " "))
	l, err := lapitest.Launch(filepath.Join(dir, "lapi"))
	if err != nil {
		return r, err
	}
	defer l.Stop()
	password := randomHex()
	if _, err := l.AddMachineErr("crowdsec-apiban-bridge", password); err != nil {
		return r, err
	}
	sim := apibansim.New(apibansim.Options{Key: apiKey, MaxRequests: apibansim.Unlimited})
	defer sim.Close()
	sim.Add(known...)
	statePath := filepath.Join(dir, "state", "state.json")
	cfg := filepath.Join(dir, "bridge.yaml")
	if err := os.WriteFile(cfg, bridgeConfig(sim.URL(), l.URL, password, statePath), 0o600); err != nil {
		return r, err
	}
	once := func(extra ...string) (measured, map[string]string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, bridgeBin, "-c", cfg, "--once")
		cmd.Env = append(append(runtimeFree(os.Environ()), env...), extra...)
		m, out, err := runTimed(cmd)
		if err != nil {
			return m, nil, err
		}
		rep := syncReport(out)
		if rep == nil {
			return m, nil, fmt.Errorf("no \"sync finished\" line in the bridge's output:\n%s", tail(out))
		}
		return m, rep, nil
	}

	var profileEnv []string
	if profile != "" {
		abs, err := filepath.Abs(profile)
		if err != nil {
			return r, err
		}
		profileEnv = []string{"CROWDSEC_APIBAN_BRIDGE_CPUPROFILE=" + abs, "CROWDSEC_APIBAN_BRIDGE_HEAPPROFILE=" + abs + ".heap"}
	}
	m, rep, err := once(profileEnv...)
	if err != nil {
		return r, err
	}
	r.full = fullBridge{measured: m, requests: sim.Requests(), wantRequests: wantRequests(len(known))}
	if r.full.requests != r.full.wantRequests {
		return r, fmt.Errorf("full sync sent %d APIBAN requests, want %d", r.full.requests, r.full.wantRequests)
	}
	if rep["pushed"] != strconv.Itoa(len(known)) {
		return r, fmt.Errorf("full sync reports pushed=%s, want %d", rep["pushed"], len(known))
	}
	if n, err := countDecisions(l, "apiban"); err != nil || n != len(known) {
		return r, fmt.Errorf("after the full sync LAPI holds %d apiban decisions (%v), want %d", n, err, len(known))
	}
	if r.full.stateBytes, err = fileSize(statePath); err != nil {
		return r, err
	}
	logf("bridge: %d addresses in %s (cpu %s, max RSS %s)", len(known), r.full.wall.Round(time.Millisecond), r.full.cpu().Round(time.Millisecond), mib(r.full.maxRSS))

	r.incr = incrRow{known: len(known), added: perRound}
	for round := 0; round*perRound < len(added); round++ {
		batch := added[round*perRound : (round+1)*perRound]
		logf("bridge: incremental sync %d, %s known and %d new", round+1, benchfmt.Num(len(known)+round*perRound), len(batch))
		sim.Add(batch...)
		sim.ResetStats()
		m, rep, err = once()
		if err != nil {
			return r, err
		}
		pushed, _ := strconv.Atoi(rep["pushed"])
		r.incr.runs = append(r.incr.runs, m)
		r.incr.requests = append(r.incr.requests, sim.Requests())
		r.incr.pushed = append(r.incr.pushed, pushed)
		if sim.Requests() != 1 {
			return r, fmt.Errorf("incremental sync sent %d APIBAN requests, want 1", sim.Requests())
		}
		if pushed != len(batch) {
			return r, fmt.Errorf("incremental sync pushed %d, want %d", pushed, len(batch))
		}
		logf("bridge: incremental in %s (cpu %s, max RSS %s)", m.wall.Round(time.Millisecond), m.cpu().Round(time.Millisecond), mib(m.maxRSS))
	}
	if r.incr.lapiTotal, err = countDecisions(l, "apiban"); err != nil || r.incr.lapiTotal != len(known)+len(added) {
		return r, fmt.Errorf("after the incremental syncs LAPI holds %d apiban decisions (%v), want %d", r.incr.lapiTotal, err, len(known)+len(added))
	}
	if r.incr.stateBytes, err = fileSize(statePath); err != nil {
		return r, err
	}
	return r, nil
}

// runtimeFree drops the Go runtime's tuning variables, so that the bridge
// runs with its defaults unless a contender sets them.
func runtimeFree(env []string) []string {
	return slices.DeleteFunc(slices.Clone(env), func(kv string) bool {
		return strings.HasPrefix(kv, "GOGC=") || strings.HasPrefix(kv, "GOMEMLIMIT=") || strings.HasPrefix(kv, "GODEBUG=")
	})
}

// bridgeConfig: pacing off (max_requests 0), no flood cap, everything
// else default.
func bridgeConfig(apibanURL, lapiURL, password, statePath string) []byte {
	return bridgetest.Config{
		APIBAN: bridgetest.APIBAN{APIKey: apiKey, URL: apibanURL, MaxRequests: new(0),
			// Lists larger than APIBAN's are the point here.
			MaxPages: 1 << 20},
		CrowdSec: bridgetest.CrowdSec{LAPIURL: lapiURL, Login: "crowdsec-apiban-bridge", Password: password},
		// The default batch size, written so that max_new_per_sync: 0
		// (no cap; the flood guard would stop a 100,000 list at 25,000)
		// is written too.
		Decisions: bridgetest.Decisions{BatchSize: 1000},
		StateFile: statePath,
		LogLevel:  "info",
	}.YAML()
}

var fieldRE = regexp.MustCompile(`(\w+)=("[^"]*"|\S+)`)

// syncReport returns the fields of the bridge's "sync finished" line.
func syncReport(out []byte) map[string]string {
	for _, line := range strings.Split(string(out), "\n") {
		if !strings.Contains(line, `msg="sync finished"`) {
			continue
		}
		f := map[string]string{}
		for _, m := range fieldRE.FindAllStringSubmatch(line, -1) {
			f[m[1]] = strings.Trim(m[2], `"`)
		}
		return f
	}
	return nil
}

func fileSize(path string) (int64, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// wantRequests is the documented cost of a full pull of n entries: one
// request per 250, and one more to learn the end when n is a multiple of
// 250 (0 included: one request that returns nothing).
func wantRequests(n int) int {
	if n%250 == 0 {
		return n/250 + 1
	}
	return (n + 249) / 250
}

// cscliImport: LAPI's own bulk path, `cscli decisions import` of the
// same addresses from a file of values, on a fresh LAPI.
func cscliImport(dir string, ips []string) (measured, error) {
	logf("cscli decisions import: %d addresses into a fresh LAPI", len(ips))
	l, err := lapitest.Launch(filepath.Join(dir, "lapi"))
	if err != nil {
		return measured{}, err
	}
	defer l.Stop()
	file := filepath.Join(dir, "ips.txt")
	if err := os.WriteFile(file, []byte(strings.Join(ips, "\n")+"\n"), 0o600); err != nil {
		return measured{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	m, _, err := runTimed(exec.CommandContext(ctx, l.Bins.Cscli, "-c", l.ConfigPath(),
		"decisions", "import", "-i", file, "--format", "values", "-d", "168h"))
	if err != nil {
		return m, err
	}
	if n, err := countDecisions(l, "cscli-import"); err != nil || n != len(ips) {
		return m, fmt.Errorf("after the import LAPI holds %d cscli-import decisions (%v), want %d", n, err, len(ips))
	}
	logf("cscli decisions import: %d addresses in %s", len(ips), m.wall.Round(time.Millisecond))
	return m, nil
}

// perIPAdds times n `cscli decisions add -i IP -d 168h` on a fresh LAPI
// and returns the mean wall time of one.
func perIPAdds(dir string, n int) (time.Duration, error) {
	logf("cscli decisions add: %d runs, one address each, into a fresh LAPI", n)
	l, err := lapitest.Launch(filepath.Join(dir, "lapi"))
	if err != nil {
		return 0, err
	}
	defer l.Stop()
	var total time.Duration
	for _, ip := range apibansim.PublicIPv4s(n, 7) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		m, _, err := runTimed(exec.CommandContext(ctx, l.Bins.Cscli, "-c", l.ConfigPath(), "decisions", "add", "-i", ip, "-d", "168h"))
		cancel()
		if err != nil {
			return 0, err
		}
		total += m.wall
	}
	if got, err := countDecisions(l, "cscli"); err != nil || got != n {
		return 0, fmt.Errorf("after %d adds LAPI holds %d cscli decisions (%v)", n, got, err)
	}
	logf("cscli decisions add: %d in %s", n, total.Round(time.Millisecond))
	return total / time.Duration(n), nil
}

var errNoBench = errors.New("no benchmark lines")

// goBench is one line of `go test -bench` output.
type goBench struct {
	name    string
	nsPerOp float64
	metrics map[string]float64 // unit -> value, e.g. "B/op", "file-bytes"
}

var benchLine = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+\d+\s+(.*)$`)

func parseGoBench(path string) ([]goBench, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []goBench
	for _, line := range strings.Split(string(data), "\n") {
		m := benchLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		b := goBench{name: m[1], metrics: map[string]float64{}}
		f := strings.Fields(m[2])
		for i := 0; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			b.metrics[f[i+1]] = v
		}
		b.nsPerOp = b.metrics["ns/op"]
		out = append(out, b)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: %w", path, errNoBench)
	}
	return out, nil
}
