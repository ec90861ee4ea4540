package main

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	gnft "github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bouncer"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bouncer/ipset"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bouncer/nftables"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/bench/benchfmt"
)

// banTime is every element's timeout (the bridge's default decision
// duration).
const banTime = 168 * time.Hour

// The bouncer's object names, as the bridge configures them.
const (
	ourTable  = "apiban_bridge"
	ourPrefix = "apiban-bridge"
	ourInput  = "apiban-bridge-input"
	// ourOrigin: APIBAN's decisions, all single IPv4 addresses, so the
	// bouncer's sets are that origin's IPv4 set alone.
	ourOrigin  = "apiban"
	ourV4Set   = ourPrefix + "-" + ourOrigin + "-v4"
	ipsetChain = "APIBAN_BRIDGE"
)

// contender names of the kernel apply.
const (
	cBouncer  = "bouncer nftables backend, full load (one batch)"
	cNftF     = "`nft -f`, same table, same elements"
	cNftFIntv = "`nft -f`, interval set (kernel-facts' 1.2 s bar)"
	cChunks   = "200 elements per transaction, one transaction after another (google/nftables)"
	cIpset    = "bouncer ipset backend, full load"
	cIpsetRes = "`ipset restore`, same elements"
)

var applyOrder = []string{cBouncer, cNftF, cNftFIntv, cChunks, cIpset, cIpsetRes}

type applyRun struct {
	timed
	count int
}

func applyBench(ctx context.Context, o options, dir string, addrs []netip.Addr, r *results) error {
	elems := make([]bouncer.Element, len(addrs))
	for i, a := range addrs {
		elems[i] = bouncer.Element{Prefix: netip.PrefixFrom(a, 32), Timeout: banTime, Origin: ourOrigin}
	}
	nftFile := filepath.Join(dir, "load.nft")
	if err := os.WriteFile(nftFile, nftScript(addrs, false), 0o600); err != nil {
		return err
	}
	nftIntvFile := filepath.Join(dir, "load-interval.nft")
	if err := os.WriteFile(nftIntvFile, nftScript(addrs, true), 0o600); err != nil {
		return err
	}
	ipsetInput := ipsetScript(addrs)

	r.apply = map[string][]applyRun{}
	for round := 1; round <= o.applyRuns; round++ {
		for _, c := range applyOrder {
			n, err := newNS(ctx, "apply")
			if err != nil {
				return err
			}
			var run applyRun
			switch c {
			case cBouncer:
				run, err = applyBouncer(ctx, n, elems)
			case cNftF:
				run, err = applyNftF(ctx, n, nftFile, "inet", "nft_f", "s4")
			case cNftFIntv:
				run, err = applyNftF(ctx, n, nftIntvFile, "inet", "nft_f", "s4")
			case cChunks:
				run, err = applyChunks(ctx, n, addrs, 200)
			case cIpset:
				run, err = applyIpset(ctx, n, elems)
			case cIpsetRes:
				run, err = applyIpsetRestore(ctx, n, ipsetInput)
			}
			n.close()
			if err != nil {
				return fmt.Errorf("%s: %w", c, err)
			}
			if run.count != len(addrs) {
				return fmt.Errorf("%s: the kernel holds %d elements, want %d", c, run.count, len(addrs))
			}
			logf("apply round %d: %s: %s wall, %s CPU, %d elements in the kernel", round, c, benchfmt.Ms(run.wall), benchfmt.Ms(run.cpu), run.count)
			r.apply[c] = append(r.apply[c], run)
		}
	}
	return nil
}

func applyBouncer(ctx context.Context, n *ns, elems []bouncer.Element) (applyRun, error) {
	b, err := nftables.New(nftables.Options{Table: ourTable, SetPrefix: ourPrefix, InputChain: ourInput, Priority: -10, NetNSFd: n.fd()})
	if err != nil {
		return applyRun{}, err
	}
	defer b.Close()
	cpu0, start := selfCPU(), time.Now()
	if err := b.Reconcile(ctx, elems); err != nil {
		return applyRun{}, err
	}
	run := applyRun{timed: timed{wall: time.Since(start), cpu: selfCPU() - cpu0}}
	run.count, err = n.nftCount(ctx, "inet", ourTable, ourV4Set)
	return run, err
}

// nftScript is the bouncer's table written for `nft -f`: the same four
// sets (single addresses and ranges, both families) and an input chain
// with the same four rules, the elements in the IPv4 set. interval makes
// that set an interval set instead.
func nftScript(addrs []netip.Addr, interval bool) []byte {
	var b strings.Builder
	flags := "timeout"
	if interval {
		flags = "interval, timeout"
	}
	fmt.Fprintf(&b, "table inet nft_f {\n")
	fmt.Fprintf(&b, "\tset s4r {\n\t\ttype ipv4_addr\n\t\tflags interval, timeout\n\t}\n")
	fmt.Fprintf(&b, "\tset s6 {\n\t\ttype ipv6_addr\n\t\tflags timeout\n\t}\n")
	fmt.Fprintf(&b, "\tset s6r {\n\t\ttype ipv6_addr\n\t\tflags interval, timeout\n\t}\n")
	fmt.Fprintf(&b, "\tset s4 {\n\t\ttype ipv4_addr\n\t\tflags %s\n\t\telements = {\n", flags)
	for i, a := range addrs {
		sep := ","
		if i == len(addrs)-1 {
			sep = ""
		}
		fmt.Fprintf(&b, "\t\t\t%s timeout %dh%s\n", a, int(banTime.Hours()), sep)
	}
	fmt.Fprintf(&b, "\t\t}\n\t}\n")
	fmt.Fprintf(&b, "\tchain input {\n\t\ttype filter hook input priority -10; policy accept;\n")
	for _, s := range []string{"meta nfproto ipv4 ip saddr @s4", "meta nfproto ipv4 ip saddr @s4r", "meta nfproto ipv6 ip6 saddr @s6", "meta nfproto ipv6 ip6 saddr @s6r"} {
		fmt.Fprintf(&b, "\t\t%s counter drop\n", s)
	}
	fmt.Fprintf(&b, "\t}\n}\n")
	return []byte(b.String())
}

func applyNftF(ctx context.Context, n *ns, file, family, table, set string) (applyRun, error) {
	t, err := n.timedRun(ctx, nil, "nft", "-f", file)
	if err != nil {
		return applyRun{}, err
	}
	run := applyRun{timed: t}
	run.count, err = n.nftCount(ctx, family, table, set)
	return run, err
}

// applyChunks is the stock firewall bouncer's way: table, set and chain
// in one transaction, then the elements in transactions of size elements,
// over one google/nftables connection with default buffers.
func applyChunks(ctx context.Context, n *ns, addrs []netip.Addr, size int) (applyRun, error) {
	cpu0, start := selfCPU(), time.Now()
	c, err := gnft.New(gnft.WithNetNSFd(n.fd()))
	if err != nil {
		return applyRun{}, err
	}
	defer c.CloseLasting()
	table := c.AddTable(&gnft.Table{Name: "chunks", Family: gnft.TableFamilyINet})
	set := &gnft.Set{Table: table, Name: "s4", KeyType: gnft.TypeIPAddr, HasTimeout: true}
	if err := c.AddSet(set, nil); err != nil {
		return applyRun{}, err
	}
	prio := gnft.ChainPriority(-10)
	ch := c.AddChain(&gnft.Chain{Name: "input", Table: table, Type: gnft.ChainTypeFilter, Hooknum: gnft.ChainHookInput, Priority: &prio})
	c.AddRule(&gnft.Rule{Table: table, Chain: ch, Exprs: []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.NFPROTO_IPV4}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
		&expr.Lookup{SourceRegister: 1, SetName: set.Name, SetID: set.ID},
		&expr.Counter{},
		&expr.Verdict{Kind: expr.VerdictDrop},
	}})
	if err := c.Flush(); err != nil {
		return applyRun{}, fmt.Errorf("create table: %w", err)
	}
	for i := 0; i < len(addrs); i += size {
		part := addrs[i:min(i+size, len(addrs))]
		els := make([]gnft.SetElement, len(part))
		for j, a := range part {
			els[j] = gnft.SetElement{Key: a.AsSlice(), Timeout: banTime}
		}
		if err := c.SetAddElements(set, els); err != nil {
			return applyRun{}, err
		}
		if err := c.Flush(); err != nil {
			return applyRun{}, fmt.Errorf("transaction %d: %w", i/size+1, err)
		}
	}
	run := applyRun{timed: timed{wall: time.Since(start), cpu: selfCPU() - cpu0}}
	run.count, err = n.nftCount(ctx, "inet", "chunks", "s4")
	return run, err
}

func applyIpset(ctx context.Context, n *ns, elems []bouncer.Element) (applyRun, error) {
	b, err := ipset.New(ipset.Options{SetPrefix: ourPrefix, Chain: ipsetChain, Hooks: []string{"INPUT"},
		NetNSFd: n.fd(), CommandPrefix: []string{"ip", "netns", "exec", n.name}})
	if err != nil {
		return applyRun{}, err
	}
	defer b.Close()
	cpu0, start := selfCPU(), time.Now()
	if err := b.Reconcile(ctx, elems); err != nil {
		return applyRun{}, err
	}
	// The iptables processes it runs are children: their CPU is not in
	// selfCPU; the wall time includes them.
	run := applyRun{timed: timed{wall: time.Since(start), cpu: selfCPU() - cpu0}}
	set, ok := b.SetName(ourOrigin, false)
	if !ok {
		return applyRun{}, fmt.Errorf("no ipset for the elements")
	}
	run.count, err = n.ipsetCount(ctx, set)
	return run, err
}

// ipsetScript is the same elements for `ipset restore`, into a set created
// as the backend creates its own (hash:net, per-element timeouts).
func ipsetScript(addrs []netip.Addr) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "create restored hash:net family inet timeout 0 maxelem 1048576\n")
	for _, a := range addrs {
		fmt.Fprintf(&b, "add restored %s timeout %d\n", a, int(banTime.Seconds()))
	}
	return []byte(b.String())
}

func applyIpsetRestore(ctx context.Context, n *ns, input []byte) (applyRun, error) {
	t, err := n.timedRun(ctx, input, "ipset", "restore")
	if err != nil {
		return applyRun{}, err
	}
	run := applyRun{timed: t}
	run.count, err = n.ipsetCount(ctx, "restored")
	return run, err
}
