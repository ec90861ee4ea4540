// Package nftables is the bouncer's nftables backend, over netlink with
// github.com/google/nftables (no nft process). It owns one inet table;
// inside it, for each family, a timeout set of single addresses and an
// interval timeout set of ranges (kept apart because an interval set
// refuses an address inside a range it holds), and base chains whose
// rules drop traffic from any of them. Every change goes in one netlink
// batch, which the kernel applies as one transaction.
package nftables

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"syscall"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bouncer"
)

// Options names the objects and places the chains.
type Options struct {
	// Table is the inet table's name.
	Table string
	// SetPrefix names the sets: PREFIX-v4, PREFIX-v4-ranges, PREFIX-v6,
	// PREFIX-v6-ranges.
	SetPrefix string
	// InputChain is the chain on the input hook, ForwardChain the one on
	// the forward hook; an empty name means no chain on that hook.
	InputChain   string
	ForwardChain string
	// Priority of the base chains (the stock firewall bouncer uses -10).
	Priority int
	// NetNSFd, when not 0, is a network namespace to work in (tests).
	NetNSFd int
}

// chunk bounds the elements per netlink message: a message's element list
// is one attribute, limited to 64 KiB. A batch holds as many messages as
// needed and is still one transaction.
const chunk = 800

// Backend implements bouncer.Backend.
type Backend struct {
	opts  Options
	table *nftables.Table
	sets  map[setKind]*nftables.Set
}

type setKind struct {
	v6, ranges bool
}

var kinds = []setKind{{false, false}, {false, true}, {true, false}, {true, true}}

func (k setKind) suffix() string {
	s := "-v4"
	if k.v6 {
		s = "-v6"
	}
	if k.ranges {
		s += "-ranges"
	}
	return s
}

// New checks the options; it touches nothing in the kernel.
func New(opts Options) (*Backend, error) {
	if opts.Table == "" || opts.SetPrefix == "" || (opts.InputChain == "" && opts.ForwardChain == "") {
		return nil, errors.New("nftables: a table, a set prefix and at least one chain are required")
	}
	b := &Backend{opts: opts, table: &nftables.Table{Name: opts.Table, Family: nftables.TableFamilyINet}}
	b.sets = map[setKind]*nftables.Set{}
	for _, k := range kinds {
		b.sets[k] = b.newSet(k)
	}
	return b, nil
}

func (b *Backend) newSet(k setKind) *nftables.Set {
	s := &nftables.Set{Table: b.table, Name: b.opts.SetPrefix + k.suffix(), HasTimeout: true, Interval: k.ranges, KeyType: nftables.TypeIPAddr}
	if k.v6 {
		s.KeyType = nftables.TypeIP6Addr
	}
	return s
}

// SetNames lists the sets' names (v4, v4 ranges, v6, v6 ranges).
func (b *Backend) SetNames() []string {
	names := make([]string, 0, len(kinds))
	for _, k := range kinds {
		names = append(names, b.sets[k].Name)
	}
	return names
}

// Name implements bouncer.Backend.
func (b *Backend) Name() string { return "nftables" }

// Nested implements bouncer.Backend: interval sets refuse overlaps.
func (b *Backend) Nested() bool { return false }

// Close implements bouncer.Backend; each call opens its own socket.
func (b *Backend) Close() error { return nil }

func (b *Backend) conn() (*nftables.Conn, error) {
	opts := []nftables.ConnOption{nftables.WithSockOptions(bigBuffers)}
	if b.opts.NetNSFd != 0 {
		opts = append(opts, nftables.WithNetNSFd(b.opts.NetNSFd))
	}
	return nftables.New(opts...)
}

// bigBuffers lets one batch carry 100,000 elements: the kernel refuses a
// netlink message larger than the socket's send buffer.
func bigBuffers(c *netlink.Conn) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = raw.Control(func(fd uintptr) {
		if e := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, 64<<20); e != nil {
			serr = e
			return
		}
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20)
	})
	return errors.Join(err, serr)
}

// exists reports whether our table is in the kernel.
func (b *Backend) exists(c *nftables.Conn) (bool, error) {
	_, err := c.ListTableOfFamily(b.opts.Table, nftables.TableFamilyINet)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, syscall.ENOENT):
		return false, nil
	default:
		return false, fmt.Errorf("nftables: list table %s: %w", b.opts.Table, err)
	}
}

// Reconcile implements bouncer.Backend: delete our table if a previous run
// left it, create everything afresh and load elems, in one batch.
func (b *Backend) Reconcile(_ context.Context, elems []bouncer.Element) error {
	c, err := b.conn()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	found, err := b.exists(c)
	if err != nil {
		return err
	}
	if found {
		c.DelTable(b.table)
	}
	c.AddTable(b.table)
	for _, k := range kinds {
		s := b.newSet(k) // fresh IDs: the batch refers to sets by ID
		b.sets[k] = s
		if err := c.AddSet(s, nil); err != nil {
			return fmt.Errorf("nftables: set %s: %w", s.Name, err)
		}
	}
	if b.opts.InputChain != "" {
		b.addChain(c, b.opts.InputChain, nftables.ChainHookInput)
	}
	if b.opts.ForwardChain != "" {
		b.addChain(c, b.opts.ForwardChain, nftables.ChainHookForward)
	}
	if err := b.add(c, elems); err != nil {
		return err
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables: create table %s with %d elements: %w", b.opts.Table, len(elems), err)
	}
	return nil
}

func (b *Backend) addChain(c *nftables.Conn, name string, hook *nftables.ChainHook) {
	prio := nftables.ChainPriority(b.opts.Priority)
	ch := c.AddChain(&nftables.Chain{
		Name: name, Table: b.table, Type: nftables.ChainTypeFilter,
		Hooknum: hook, Priority: &prio,
	})
	for _, k := range kinds {
		c.AddRule(&nftables.Rule{Table: b.table, Chain: ch, Exprs: dropFrom(b.sets[k], k.v6)})
	}
}

// dropFrom is `meta nfproto ipvX ip(6) saddr @set counter drop`.
func dropFrom(s *nftables.Set, v6 bool) []expr.Any {
	proto, offset, length := byte(unix.NFPROTO_IPV4), uint32(12), uint32(4)
	if v6 {
		proto, offset, length = unix.NFPROTO_IPV6, 8, 16
	}
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: length},
		&expr.Lookup{SourceRegister: 1, SetName: s.Name, SetID: s.ID},
		&expr.Counter{},
		&expr.Verdict{Kind: expr.VerdictDrop},
	}
}

// Apply implements bouncer.Backend.
func (b *Backend) Apply(_ context.Context, ch bouncer.Changes) error {
	if ch.Empty() {
		return nil
	}
	c, err := b.conn()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	del := slices.Clone(ch.Delete)
	for _, e := range ch.Refresh {
		del = append(del, e.Prefix)
	}
	if err := b.del(c, del); err != nil {
		return err
	}
	if err := b.add(c, slices.Concat(ch.Refresh, ch.Add)); err != nil {
		return err
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables: apply %d deletes, %d refreshes, %d adds to table %s: %w",
			len(ch.Delete), len(ch.Refresh), len(ch.Add), b.opts.Table, err)
	}
	return nil
}

func (b *Backend) add(c *nftables.Conn, elems []bouncer.Element) error {
	per := map[setKind][]nftables.SetElement{}
	for _, e := range elems {
		k := kindOf(e.Prefix)
		per[k] = append(per[k], encode(e.Prefix, e.Timeout)...)
	}
	return b.each(per, c.SetAddElements)
}

func (b *Backend) del(c *nftables.Conn, prefixes []netip.Prefix) error {
	per := map[setKind][]nftables.SetElement{}
	for _, p := range prefixes {
		k := kindOf(p)
		per[k] = append(per[k], encode(p, 0)...)
	}
	return b.each(per, c.SetDeleteElements)
}

// each queues the elements set by set, in chunks. An interval's start and
// end always travel in the same chunk.
func (b *Backend) each(per map[setKind][]nftables.SetElement, op func(*nftables.Set, []nftables.SetElement) error) error {
	for _, k := range kinds {
		els := per[k]
		for len(els) > 0 {
			n := min(chunk, len(els))
			if n < len(els) && els[n].IntervalEnd {
				n++
			}
			if err := op(b.sets[k], els[:n]); err != nil {
				return fmt.Errorf("nftables: set %s: %w", b.sets[k].Name, err)
			}
			els = els[n:]
		}
	}
	return nil
}

func kindOf(p netip.Prefix) setKind {
	return setKind{v6: p.Addr().Is6(), ranges: isRange(p)}
}

// encode gives a single address as one element, a range as the interval
// [first, last+1): a start element carrying the timeout and an end
// element (the kernel refuses a timeout on an interval end). A range
// reaching the top of the address space has no end element.
func encode(p netip.Prefix, timeout time.Duration) []nftables.SetElement {
	first := p.Masked().Addr()
	if !isRange(p) {
		return []nftables.SetElement{{Key: first.AsSlice(), Timeout: timeout}}
	}
	els := []nftables.SetElement{{Key: first.AsSlice(), Timeout: timeout}}
	if end := lastAddr(p).Next(); end.IsValid() {
		els = append(els, nftables.SetElement{Key: end.AsSlice(), IntervalEnd: true})
	}
	return els
}

func isRange(p netip.Prefix) bool { return p.Bits() < p.Addr().BitLen() }

// lastAddr is the highest address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().AsSlice()
	for i := range a {
		hostBits := len(a)*8 - p.Bits() - (len(a)-1-i)*8
		switch {
		case hostBits >= 8:
			a[i] = 0xff
		case hostBits > 0:
			a[i] |= byte(1<<hostBits - 1)
		}
	}
	last, _ := netip.AddrFromSlice(a)
	return last
}

// Cleanup implements bouncer.Backend: delete our table, if it exists.
func (b *Backend) Cleanup(_ context.Context) error {
	c, err := b.conn()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	found, err := b.exists(c)
	if err != nil || !found {
		return err
	}
	c.DelTable(b.table)
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables: delete table %s: %w", b.opts.Table, err)
	}
	return nil
}

// Dropped implements bouncer.CounterReader: the sum of our drop rules'
// counters (they restart from zero when the table is rebuilt).
func (b *Backend) Dropped(_ context.Context) (bouncer.Counters, error) {
	c, err := b.conn()
	if err != nil {
		return bouncer.Counters{}, fmt.Errorf("nftables: %w", err)
	}
	var total bouncer.Counters
	for _, name := range []string{b.opts.InputChain, b.opts.ForwardChain} {
		if name == "" {
			continue
		}
		rules, err := c.GetRules(b.table, &nftables.Chain{Name: name, Table: b.table})
		if err != nil {
			return bouncer.Counters{}, fmt.Errorf("nftables: rules of %s: %w", name, err)
		}
		for _, r := range rules {
			for _, e := range r.Exprs {
				if ctr, ok := e.(*expr.Counter); ok {
					total.Packets += ctr.Packets
					total.Bytes += ctr.Bytes
				}
			}
		}
	}
	return total, nil
}

// Lookup implements bouncer.Looker: the elements of our sets of addr's
// family that hold addr, read with GetSetElements (nothing is changed).
// bouncer.ErrNotLoaded when our table does not exist.
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
	var out []bouncer.Match
	for _, k := range kinds {
		if k.v6 != addr.Is6() {
			continue
		}
		name := b.opts.SetPrefix + k.suffix()
		els, err := c.GetSetElements(&nftables.Set{Table: b.table, Name: name})
		if err != nil {
			return nil, fmt.Errorf("nftables: elements of %s: %w", name, err)
		}
		for _, m := range match(els, addr, k.ranges) {
			m.Set = name
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
