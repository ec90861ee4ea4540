package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/bench/benchfmt"
)

// table gathers every result and prints them as one Markdown table.
type table struct {
	full     []fullRow
	incr     []incrRow
	requests []requestRow
	pacing   []pacingRow
	gobench  []goBench
	limited  *limitedRow
	kernel   [][5]string // benchkernel's rows (items 3 and 4), when run
}

// limitedRow is the largest full sync again, with a Go runtime setting.
type limitedRow struct {
	n      int
	env    string
	bridge fullBridge
}

type fullRow struct {
	n      int
	bridge fullBridge
	imp    measured
	perAdd time.Duration // mean wall time of one `cscli decisions add`; 0 when skipped
}

func (t *table) print(w io.Writer) {
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| # | Measure | Result | Target | Verdict |")
	fmt.Fprintln(w, "|---|---|---|---|---|")
	row := func(item, measure, result, target, verdict string) {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", item, measure, result, target, verdict)
	}
	for _, f := range t.full {
		b := f.bridge
		row("1", fmt.Sprintf("full sync of %s IPs: bridge `--once`, pacing off", benchfmt.Num(f.n)),
			fmt.Sprintf("%s wall (bridge CPU %s; %d APIBAN requests)", benchfmt.Secs(b.wall), benchfmt.Secs(b.cpu()), b.requests),
			fmt.Sprintf("requests = %d", b.wantRequests), fmt.Sprintf("LAPI holds %s; requests ok", benchfmt.Num(f.n)))
		if f.imp.wall > 0 {
			row("1", fmt.Sprintf("full sync of %s IPs: `cscli decisions import --format values`", benchfmt.Num(f.n)),
				fmt.Sprintf("%s wall (cscli CPU %s)", benchfmt.Secs(f.imp.wall), benchfmt.Secs(f.imp.cpu())), "", fmt.Sprintf("LAPI holds %s", benchfmt.Num(f.n)))
			ratio := b.wall.Seconds() / f.imp.wall.Seconds()
			verdict := fmt.Sprintf("**met**: %.0f%% faster", (1-ratio)*100)
			if ratio > 1 {
				verdict = fmt.Sprintf("**missed** by %.0f%%", (ratio-1)*100)
			}
			row("1", fmt.Sprintf("bridge / import, %s IPs", benchfmt.Num(f.n)), fmt.Sprintf("%.2f", ratio), "≤ 1.00", verdict)
		}
		if f.perAdd > 0 {
			row("1", fmt.Sprintf("full sync of %s IPs: one `cscli decisions add -d 168h` per IP", benchfmt.Num(f.n)),
				fmt.Sprintf("%s (scaled: %s per add, mean of the timed runs)", benchfmt.Secs(f.perAdd*time.Duration(f.n)), benchfmt.Ms(f.perAdd)),
				"", fmt.Sprintf("%.0fx the bridge", (f.perAdd*time.Duration(f.n)).Seconds()/b.wall.Seconds()))
		}
	}
	for _, r := range t.incr {
		if len(r.runs) == 0 {
			continue
		}
		m := r.median()
		lo, hi := r.runs[0].cpu(), r.runs[0].cpu()
		for _, run := range r.runs {
			lo, hi = min(lo, run.cpu()), max(hi, run.cpu())
		}
		what := fmt.Sprintf("incremental, %s known + %d new (%d rounds)", benchfmt.Num(r.known), r.added, len(r.runs))
		row("2", what+": APIBAN requests per sync", ints(r.requests), "1", verdict(allEqual(r.requests, 1)))
		row("2", what+": decisions pushed per sync", ints(r.pushed), fmt.Sprint(r.added),
			verdict(allEqual(r.pushed, r.added))+fmt.Sprintf("; LAPI holds %s", benchfmt.Num(r.lapiTotal)))
		row("2", what+": bridge process CPU (user+sys), median",
			fmt.Sprintf("%s (user %s, sys %s; %s wall; all runs %s to %s)", benchfmt.Ms(m.cpu()), benchfmt.Ms(m.user), benchfmt.Ms(m.sys), benchfmt.Ms(m.wall), benchfmt.Ms(lo), benchfmt.Ms(hi)),
			"< 30 ms", verdict(m.cpu() < 30*time.Millisecond))
	}
	for _, b := range t.gobench {
		if strings.HasPrefix(b.name, "BenchmarkEdge") {
			row("10", fmt.Sprintf("Go: `%s` (the per-sync check, one GET /v1/alerts, real LAPI): wall per request", b.name),
				benchfmt.Ms(time.Duration(b.nsPerOp)), "one request a sync", "met (one request by construction)")
		}
		if strings.HasPrefix(b.name, "BenchmarkSyncIncremental") {
			cpu, ok := b.metrics["cpu-ns/op"]
			if !ok {
				continue
			}
			row("2", fmt.Sprintf("Go: `%s` (Engine.Sync, in-memory LAPI and feed): CPU (wall)", b.name),
				fmt.Sprintf("%s/op (%s/op wall, fsyncs included)", benchfmt.Ms(time.Duration(cpu)), benchfmt.Ms(time.Duration(b.nsPerOp))), "< 30 ms", verdict(cpu < 30e6))
		}
	}
	if len(t.kernel) == 0 {
		row("3", "kernel apply of 100,000 decisions (embedded bouncer vs `nft -f` vs 200-element transactions)", "not measured (run.sh runs benchkernel as root)", "within 1.5x of `nft -f`", "pending")
		row("4", "UDP packets/s into a \"pbx\" namespace, 100,000-element set vs 5,000 iptables rules", "not measured (run.sh runs benchkernel as root)", "", "pending")
	}
	for _, k := range t.kernel {
		row(k[0], k[1], k[2], k[3], k[4])
	}
	for _, f := range t.full {
		row("5", fmt.Sprintf("peak RSS, full sync of %s IPs (bridge process)", benchfmt.Num(f.n)), mib(f.bridge.maxRSS), "< 64 MiB", verdict(f.bridge.maxRSS < 64<<20))
	}
	if l := t.limited; l != nil {
		row("5", fmt.Sprintf("peak RSS, full sync of %s IPs, bridge run with `%s`", benchfmt.Num(l.n), l.env),
			fmt.Sprintf("%s (%s wall, CPU %s; LAPI holds %s)", mib(l.bridge.maxRSS), benchfmt.Secs(l.bridge.wall), benchfmt.Secs(l.bridge.cpu()), benchfmt.Num(l.n)),
			"< 64 MiB", verdict(l.bridge.maxRSS < 64<<20))
	}
	for _, r := range t.incr {
		if len(r.runs) == 0 {
			continue
		}
		row("5", fmt.Sprintf("peak RSS, incremental with %s tracked IPs (bridge process, highest of the rounds)", benchfmt.Num(r.known)), mib(r.maxRSS()), "< 64 MiB", verdict(r.maxRSS() < 64<<20))
		row("5", fmt.Sprintf("state file, %s tracked IPs", benchfmt.Num(r.known+r.added*len(r.runs))), fmt.Sprintf("%s bytes (%s)", benchfmt.Num(int(r.stateBytes)), mib(r.stateBytes)), "", "")
	}
	for _, b := range t.gobench {
		if strings.HasPrefix(b.name, "BenchmarkState") {
			res := benchfmt.Ms(time.Duration(b.nsPerOp)) + "/op"
			if v, ok := b.metrics["cpu-ns/op"]; ok {
				res += fmt.Sprintf(" (CPU %s/op)", benchfmt.Ms(time.Duration(v)))
			}
			if v, ok := b.metrics["B/op"]; ok {
				res += fmt.Sprintf(", %s allocated", mib(int64(v)))
			}
			if v, ok := b.metrics["file-bytes"]; ok {
				res += fmt.Sprintf(", file %s", mib(int64(v)))
			}
			row("5", fmt.Sprintf("Go: `%s`", b.name), res, "", "")
		}
	}
	for _, r := range t.requests {
		row("6", fmt.Sprintf("APIBAN requests, full pull of N = %s", benchfmt.Num(r.n)), fmt.Sprintf("%d (simulator saw %d)", r.client, r.sim),
			fmt.Sprintf("ceil(N/250)%s = %d", plusOne(r.n), r.want), verdict(r.client == r.want && r.sim == r.want))
	}
	for _, f := range t.full {
		row("6", fmt.Sprintf("APIBAN requests, bridge full sync of N = %s", benchfmt.Num(f.n)), fmt.Sprint(f.bridge.requests),
			fmt.Sprintf("ceil(N/250)%s = %d", plusOne(f.n), f.bridge.wantRequests), verdict(f.bridge.requests == f.bridge.wantRequests))
	}
	for _, p := range t.pacing {
		target, v := "0 answered 429", verdict(p.r429 == 0)
		if p.clientMax == 0 {
			target, v = "(control: the limit is enforced)", fmt.Sprintf("%d answered 429, as expected", p.r429)
		}
		row("6", fmt.Sprintf("pacing, %s, simulator limit 11 per window (2 min scaled to 2 s)", p.label),
			fmt.Sprintf("%d requests, %d answered 429, %s", p.requests, p.r429, benchfmt.Secs(p.wall)), target, v)
	}
	for _, b := range t.gobench {
		if !strings.HasPrefix(b.name, "BenchmarkState") && !strings.HasPrefix(b.name, "BenchmarkSyncIncremental") {
			res := benchfmt.Ms(time.Duration(b.nsPerOp)) + "/op"
			if v, ok := b.metrics["cpu-ns/op"]; ok {
				res += fmt.Sprintf(" (CPU %s/op)", benchfmt.Ms(time.Duration(v)))
			}
			if v, ok := b.metrics["peak-rss-MiB"]; ok {
				res += fmt.Sprintf(", peak RSS %.0f MiB (the test process's)", v)
			}
			row("-", fmt.Sprintf("Go: `%s`", b.name), res, "", "")
		}
	}
	fmt.Fprintln(w)
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "**missed**"
}

func plusOne(n int) string {
	if n%250 == 0 {
		return " + 1"
	}
	return ""
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func ints(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = fmt.Sprint(n)
	}
	return strings.Join(s, ", ")
}

func allEqual(v []int, want int) bool {
	for _, n := range v {
		if n != want {
			return false
		}
	}
	return len(v) > 0
}
