// Reading the kernel back: drop counters and which sets hold an address.

package nftables

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bouncer"
)

// ruleInfo is what one of our drop rules says: the set it looks up, the
// origin in its comment, its family and its counter.
type ruleInfo struct {
	set, origin string
	ipType      string
	counter     bouncer.Counters
}

// rules reads our drop rules from every chain of ours.
func (b *Backend) rules(c *nftables.Conn) ([]ruleInfo, error) {
	var out []ruleInfo
	for _, ch := range b.chains() {
		rules, err := c.GetRules(b.table, ch)
		if err != nil {
			return nil, fmt.Errorf("nftables: rules of %s: %w", ch.Name, err)
		}
		for _, r := range rules {
			if info := describe(r); info.set != "" { // not the reply rule
				out = append(out, info)
			}
		}
	}
	return out, nil
}

func describe(r *nftables.Rule) ruleInfo {
	info := ruleInfo{ipType: "ipv4"}
	info.origin, _ = userdata.GetString(r.UserData, userdata.TypeComment)
	for _, e := range r.Exprs {
		switch e := e.(type) {
		case *expr.Cmp:
			if len(e.Data) == 1 && e.Data[0] == unix.NFPROTO_IPV6 {
				info.ipType = "ipv6"
			}
		case *expr.Lookup:
			info.set = e.SetName
		case *expr.Counter:
			info.counter = bouncer.Counters{Packets: e.Packets, Bytes: e.Bytes}
		}
	}
	return info
}

// Dropped implements bouncer.CounterReader: our drop rules' counters by
// the origin in their comment (they restart when the table is rebuilt).
func (b *Backend) Dropped(_ context.Context) (map[bouncer.DropKey]bouncer.Counters, error) {
	c, err := b.conn()
	if err != nil {
		return nil, fmt.Errorf("nftables: %w", err)
	}
	rules, err := b.rules(c)
	if err != nil {
		return nil, err
	}
	out := map[bouncer.DropKey]bouncer.Counters{}
	for _, r := range rules {
		k := bouncer.DropKey{Origin: r.origin, IPType: r.ipType}
		out[k] = out[k].Plus(r.counter)
	}
	return out, nil
}

// Lookup implements bouncer.Looker: the elements of our sets of addr's
// family that hold addr, read with GetSetElements (nothing is changed),
// with the origin each set's rule names. bouncer.ErrNotLoaded when our
// table does not exist.
func (b *Backend) Lookup(_ context.Context, addr netip.Addr) ([]bouncer.Match, error) {
	addr = addr.Unmap()
	c, err := b.conn()
	if err != nil {
		return nil, fmt.Errorf("nftables: %w", err)
	}
	found, err := b.exists(c)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("%w: no table inet %s", bouncer.ErrNotLoaded, b.opts.Table)
	}
	sets, err := c.GetSets(b.table)
	if err != nil {
		return nil, fmt.Errorf("nftables: sets of %s: %w", b.opts.Table, err)
	}
	rules, err := b.rules(c)
	if err != nil {
		return nil, err
	}
	origin := map[string]string{}
	for _, r := range rules {
		origin[r.set] = r.origin
	}
	var out []bouncer.Match
	for _, s := range sets {
		if int(s.KeyType.Bytes) != addr.BitLen()/8 || !strings.HasPrefix(s.Name, b.opts.SetPrefix+"-") {
			continue
		}
		els, err := c.GetSetElements(s)
		if err != nil {
			return nil, fmt.Errorf("nftables: elements of %s: %w", s.Name, err)
		}
		for _, m := range match(els, addr, s.Interval) {
			m.Set, m.Origin = s.Name, origin[s.Name]
			out = append(out, m)
		}
	}
	return out, nil
}

// match finds addr among a set's elements. In an interval set a range is
// a start element (with the timeout) and an end element one past its
// last address (none at the top of the address space); ranges never
// overlap, so a range ends at the lowest end above its start.
func match(els []nftables.SetElement, addr netip.Addr, ranges bool) []bouncer.Match {
	var starts []nftables.SetElement
	var ends []netip.Addr
	for _, e := range els {
		a, ok := netip.AddrFromSlice(e.Key)
		if !ok || a.BitLen() != addr.BitLen() {
			continue
		}
		switch {
		case !ranges:
			if a == addr {
				return []bouncer.Match{{Prefix: netip.PrefixFrom(a, a.BitLen()), Left: e.Expires}}
			}
		case e.IntervalEnd:
			ends = append(ends, a)
		default:
			starts = append(starts, e)
		}
	}
	slices.SortFunc(ends, netip.Addr.Compare)
	for _, s := range starts {
		first, _ := netip.AddrFromSlice(s.Key)
		if addr.Less(first) {
			continue
		}
		// The lowest end above first (an end equal to first closes the
		// adjacent range below).
		i, same := slices.BinarySearchFunc(ends, first, netip.Addr.Compare)
		if same {
			i++
		}
		last := lastAddr(netip.PrefixFrom(first, 0)) // no end: the top of the space
		if i < len(ends) {
			last = ends[i].Prev()
		}
		if !last.Less(addr) {
			return []bouncer.Match{{Prefix: covering(first, last), Left: s.Expires}}
		}
	}
	return nil
}

// covering is the narrowest prefix holding first..last: exactly the
// range for the ranges we load.
func covering(first, last netip.Addr) netip.Prefix {
	for bits := first.BitLen(); bits > 0; bits-- {
		if p := netip.PrefixFrom(first, bits).Masked(); p.Contains(last) {
			return p
		}
	}
	return netip.PrefixFrom(first, 0).Masked()
}
