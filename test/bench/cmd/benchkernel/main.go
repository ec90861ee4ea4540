// Command benchkernel measures the kernel half of issue 6, in network
// namespaces of its own (root needed; loopback and veth only):
//
//   - item 3, kernel apply: 100,000 decisions loaded by the embedded
//     bouncer's nftables backend (its full load, one batch) against
//     `nft -f` loading the same elements into an equivalent table, against
//     500 transactions of 200 elements over the same netlink library (the
//     stock firewall bouncer's way), and the ipset backend's full load
//     against `ipset restore`;
//   - item 4, per-packet cost: UDP packets per second a "pbx" namespace
//     receives over a veth from an "attacker" namespace, with no rules,
//     with the bouncer's nftables table holding 100,000 elements, with the
//     ipset backend holding them, and with 5,000 one-rule-per-IP iptables
//     rules (iptables-nft and iptables-legacy).
//
// Every load is checked in the kernel (element or rule count) and every
// packet test proves its rules are evaluated (packets from a listed
// address are dropped and counted) before a number is printed. Each
// contender gets fresh namespaces, deleted afterwards, also on failure,
// on SIGINT/SIGTERM and when the -timeout watchdog fires.
//
// It prints its own Markdown table and, with -rows, writes the rows for
// benchsync's table (-kernel), tab-separated.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/apibansim"
)

type options struct {
	n          int
	rules      int
	applyRuns  int
	ppsRuns    int
	ppsSeconds time.Duration
	rows       string
	keep       bool
}

func main() {
	var o options
	flag.IntVar(&o.n, "n", 100_000, "elements of the kernel apply and of the sets in the packet test")
	flag.IntVar(&o.rules, "rules", 5_000, "one-rule-per-IP iptables rules in the packet test")
	flag.IntVar(&o.applyRuns, "apply-rounds", 3, "rounds of the kernel apply comparison (median reported)")
	flag.IntVar(&o.ppsRuns, "pps-rounds", 3, "rounds of the packet test (median reported)")
	flag.DurationVar(&o.ppsSeconds, "pps-time", 3*time.Second, "sending time of each packet test")
	flag.StringVar(&o.rows, "rows", "", "write the table rows here, tab-separated, for benchsync -kernel")
	timeout := flag.Duration("timeout", 10*time.Minute, "watchdog: clean up and exit after this long")
	flag.Parse()

	if os.Geteuid() != 0 {
		writeRows(o.rows, pendingRows("not measured: needs root (network namespaces)"))
		fatalf("needs root (network namespaces, nftables, iptables)")
	}
	for _, tool := range []string{"ip", "nft", "ipset", "iptables", "iptables-restore"} {
		if !have(tool) {
			writeRows(o.rows, pendingRows("not measured: "+tool+" not installed"))
			fatalf("%s not installed (apt-get install iproute2 nftables ipset iptables)", tool)
		}
	}

	// Namespaces are deleted however the run ends.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		s := <-sig
		cleanupAll()
		fatalf("%v: namespaces deleted", s)
	}()
	watchdog := time.AfterFunc(*timeout, func() {
		cleanupAll()
		fatalf("watchdog: still running after %v; namespaces deleted", *timeout)
	})
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)

	dir, err := os.MkdirTemp("", "apiban-benchkernel-")
	if err != nil {
		fatalf("%v", err)
	}
	r := &results{}
	err = run(ctx, o, dir, r)
	cancel()
	watchdog.Stop()
	cleanupAll()
	os.RemoveAll(dir)
	rows := r.rows(o)
	printTable(os.Stdout, rows)
	if err != nil {
		writeRows(o.rows, pendingRows("not measured: benchkernel failed: "+oneLine(err.Error())))
		fatalf("%v", err)
	}
	writeRows(o.rows, rows)
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "benchkernel: "+format+"\n", args...)
	cleanupAll()
	os.Exit(1)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s  "+format+"\n", append([]any{time.Now().UTC().Format("15:04:05")}, args...)...)
}

func run(ctx context.Context, o options, dir string, r *results) error {
	addrs := addresses(o.n + 1)
	// The last address is kept out of every set and rule list.
	outside, addrs := addrs[len(addrs)-1], addrs[:len(addrs)-1]
	logf("load: %s", loadavg())
	r.loadBefore = loadavg()
	if err := applyBench(ctx, o, dir, addrs, r); err != nil {
		return fmt.Errorf("kernel apply: %w", err)
	}
	if err := ppsBench(ctx, o, dir, addrs, outside, r); err != nil {
		return fmt.Errorf("packet test: %w", err)
	}
	r.loadAfter = loadavg()
	logf("load: %s", r.loadAfter)
	return nil
}

// addresses are n distinct public-looking IPv4 addresses outside the
// packet test's link (192.0.2.0/24).
func addresses(n int) []netip.Addr {
	link := netip.MustParsePrefix(linkNet)
	var out []netip.Addr
	for _, s := range apibansim.PublicIPv4s(n+64, 7) {
		a := netip.MustParseAddr(s)
		if !link.Contains(a) && len(out) < n {
			out = append(out, a)
		}
	}
	return out
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

// row is one line of the table: item, measure, result, target, verdict.
type row [5]string

func pendingRows(why string) []row {
	return []row{
		{"3", "kernel apply of 100,000 decisions (embedded bouncer vs `nft -f` vs 200-element transactions)", why, "within 1.5x of `nft -f`", "pending"},
		{"4", "UDP packets/s into a \"pbx\" namespace, 100,000-element set vs 5,000 iptables rules", why, "", "pending"},
	}
}

func printTable(w io.Writer, rows []row) {
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| # | Measure | Result | Target | Verdict |")
	fmt.Fprintln(w, "|---|---|---|---|---|")
	for _, r := range rows {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", r[0], r[1], r[2], r[3], r[4])
	}
	fmt.Fprintln(w)
}

func writeRows(path string, rows []row) {
	if path == "" {
		return
	}
	var b strings.Builder
	for _, r := range rows {
		b.WriteString(strings.Join(r[:], "\t") + "\n")
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "benchkernel:", err)
	}
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return strings.ReplaceAll(s, "|", "/")
}

// median of durations or rates; v is sorted in place.
func median[T int64 | float64 | time.Duration](v []T) T {
	slices.Sort(v)
	if len(v) == 0 {
		return 0
	}
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}
