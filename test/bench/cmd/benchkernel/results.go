package main

import (
	"fmt"
	"time"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/bench/benchfmt"
)

// results gathers the measurements for the table.
type results struct {
	apply                 map[string][]applyRun
	pps                   map[string][]ppsRun
	ppsOrder              []string
	loadBefore, loadAfter string
}

func applyStats(runs []applyRun) (wall, cpu, lo, hi time.Duration) {
	walls := make([]time.Duration, len(runs))
	cpus := make([]time.Duration, len(runs))
	for i, r := range runs {
		walls[i], cpus[i] = r.wall, r.cpu
	}
	wall, cpu = median(walls), median(cpus)
	return wall, cpu, walls[0], walls[len(walls)-1] // median sorted walls
}

func ppsStats(runs []ppsRun) (rate, lo, hi, sentRate float64, drops int64) {
	rates := make([]float64, len(runs))
	sent := make([]float64, len(runs))
	for i, r := range runs {
		rates[i] = r.rate()
		sent[i] = float64(r.sent) / r.elapsed.Seconds()
		drops = max(drops, r.rcvbufErrors)
	}
	rate, sentRate = median(rates), median(sent)
	return rate, rates[0], rates[len(rates)-1], sentRate, drops
}

func (r *results) rows(o options) []row {
	var rows []row
	n := benchfmt.Num(o.n)
	// Item 3.
	if len(r.apply[cBouncer]) == 0 || len(r.apply[cNftF]) == 0 {
		rows = append(rows, pendingRows("not measured (benchkernel stopped early)")[0])
	} else {
		for _, c := range applyOrder {
			runs := r.apply[c]
			if len(runs) == 0 {
				continue
			}
			wall, cpu, lo, hi := applyStats(runs)
			cpuNote := "CPU " + benchfmt.Ms(cpu)
			switch c {
			case cIpset:
				cpuNote += " in the process, its iptables children not counted"
			case cNftF, cNftFIntv, cIpsetRes:
				cpuNote += " of the process"
			default:
				cpuNote += " in the process, kernel side included"
			}
			rows = append(rows, row{"3", fmt.Sprintf("kernel apply of %s IPv4 decisions, timeout 168h: %s", n, c),
				fmt.Sprintf("%s wall, median of %d (%s to %s); %s", benchfmt.Secs(wall), len(runs), benchfmt.Secs(lo), benchfmt.Secs(hi), cpuNote),
				"", fmt.Sprintf("%s elements in the kernel, checked", n)})
		}
		b, _, _, _ := applyStats(r.apply[cBouncer])
		f, _, _, _ := applyStats(r.apply[cNftF])
		ratio := b.Seconds() / f.Seconds()
		v := fmt.Sprintf("**met** (%.0f%% of the allowance used)", ratio/1.5*100)
		if ratio > 1.5 {
			v = fmt.Sprintf("**missed** by %.0f%%", (ratio/1.5-1)*100)
		}
		rows = append(rows, row{"3", "bouncer full load / `nft -f` (same table, same elements)", fmt.Sprintf("%.2f", ratio), "≤ 1.50", v})
		if ch := r.apply[cChunks]; len(ch) > 0 {
			c, _, _, _ := applyStats(ch)
			v := fmt.Sprintf("one batch is %.1fx faster", c.Seconds()/b.Seconds())
			if c < b {
				v = fmt.Sprintf("the chunks were %.0f%% faster", (1-c.Seconds()/b.Seconds())*100)
			}
			rows = append(rows, row{"3", fmt.Sprintf("%d transactions of 200 elements / bouncer full load", (o.n+199)/200),
				fmt.Sprintf("%.2f", c.Seconds()/b.Seconds()), "", v})
		}
		if is, ir := r.apply[cIpset], r.apply[cIpsetRes]; len(is) > 0 && len(ir) > 0 {
			a, _, _, _ := applyStats(is)
			c, _, _, _ := applyStats(ir)
			rows = append(rows, row{"3", "ipset backend full load / `ipset restore`", fmt.Sprintf("%.2f", a.Seconds()/c.Seconds()), "", "(no target)"})
		}
	}
	// Item 4.
	if len(r.pps[pNft]) == 0 || len(r.pps[pIpt]) == 0 {
		rows = append(rows, pendingRows("not measured (benchkernel stopped early)")[1])
		return rows
	}
	base, _, _, _, _ := ppsStats(r.pps[pNone])
	for _, c := range r.ppsOrder {
		runs := r.pps[c]
		rate, lo, hi, sent, drops := ppsStats(runs)
		v := fmt.Sprintf("%.0f%% of no rules; rules checked, the probe dropped and counted", rate/base*100)
		if c == pNone {
			v = "the baseline; the probe received"
		}
		rows = append(rows, row{"4", fmt.Sprintf("UDP packets/s received by the pbx, %s (sender on no list)", label(c, o)),
			fmt.Sprintf("%s/s, median of %d x %s (%s to %s); sender %s/s; socket drops %d",
				benchfmt.Num(int(rate)), len(runs), benchfmt.Secs(o.ppsSeconds), benchfmt.Num(int(lo)), benchfmt.Num(int(hi)), benchfmt.Num(int(sent)), drops),
			"", v})
	}
	nft, _, _, _, _ := ppsStats(r.pps[pNft])
	ipt, _, _, _, _ := ppsStats(r.pps[pIpt])
	rows = append(rows, row{"4", fmt.Sprintf("packets/s, %s-element nftables set / %s iptables-nft rules", n, benchfmt.Num(o.rules)),
		fmt.Sprintf("%.1f", nft/ipt), "(issue: compare)", fmt.Sprintf("the set passes %.1fx the traffic", nft/ipt)})
	if leg := r.pps[pIptLegacy]; len(leg) > 0 {
		l, _, _, _, _ := ppsStats(leg)
		rows = append(rows, row{"4", fmt.Sprintf("packets/s, %s-element nftables set / %s iptables-legacy rules", n, benchfmt.Num(o.rules)),
			fmt.Sprintf("%.1f", nft/l), "(issue: compare)", fmt.Sprintf("the set passes %.1fx the traffic", nft/l)})
	}
	return rows
}
