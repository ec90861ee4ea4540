// Package nftables is the bouncer's nftables backend, over netlink with
// github.com/google/nftables (no nft process). It owns one inet table;
// inside it, for each origin and family, a timeout set of single
// addresses and an interval timeout set of ranges (kept apart because an
// interval set refuses an address inside a range it holds), and base
// chains with one counting drop rule per set, so that the kernel counts
// drops by origin. Every change goes in one netlink batch, which the
// kernel applies as one transaction.
package nftables

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bouncer"
)

// Options names the objects and places the chains.
type Options struct {
	// Table is the inet table's name.
	Table string
	// SetPrefix names the sets: PREFIX-ORIGIN-v4, PREFIX-ORIGIN-v4-ranges,
	// PREFIX-ORIGIN-v6, PREFIX-ORIGIN-v6-ranges.
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
	// sets are the sets in the kernel, created on demand: an origin has
	// only the sets its elements need.
	sets map[setKey]*nftables.Set
	// names maps each set name in use to its origin: two origins that
	// would share a name (after cleaning) get distinct ones.
	names map[string]string
}

type setKind struct {
	v6, ranges bool
}

type setKey struct {
	origin string
	kind   setKind
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

func (k setKind) ipType() string {
	if k.v6 {
		return "ipv6"
	}
	return "ipv4"
}

// New checks the options; it touches nothing in the kernel.
func New(opts Options) (*Backend, error) {
	if opts.Table == "" || opts.SetPrefix == "" || (opts.InputChain == "" && opts.ForwardChain == "") {
		return nil, errors.New("nftables: a table, a set prefix and at least one chain are required")
	}
	b := &Backend{opts: opts, table: &nftables.Table{Name: opts.Table, Family: nftables.TableFamilyINet}}
	b.forget()
	return b, nil
}

// forget drops what the backend knows of the kernel's sets (the table is
// being rebuilt).
func (b *Backend) forget() {
	b.sets = map[setKey]*nftables.Set{}
	b.names = map[string]string{}
}

// maxOriginInName bounds the origin's part of a set name; longer origins
// are cut and told apart by a hash. The kernel takes 255 characters, but
// names stay short enough to read and type.
const maxOriginInName = 32

// setName is PREFIX-ORIGIN-KIND, the origin cleaned to letters, digits,
// '_' and '-' so that the name can be typed in an nft command. A cleaned,
// cut or already used name gets a hash of the origin appended.
func (b *Backend) setName(origin string, k setKind) string {
	clean := strings.Map(func(r rune) rune {
		if r == '_' || r == '-' || r < 128 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return r
		}
		return '_'
	}, origin)
	if clean == "" {
		clean = "none"
	}
	name := b.opts.SetPrefix + "-" + clean + k.suffix()
	if clean == origin && len(clean) <= maxOriginInName && b.free(name, origin) {
		return name
	}
	h := fnv.New32a()
	h.Write([]byte(origin))
	name = fmt.Sprintf("%s-%s-%08x%s", b.opts.SetPrefix, clean[:min(len(clean), maxOriginInName)], h.Sum32(), k.suffix())
	if !b.free(name, origin) {
		// Two origins with the same 32-bit hash: count on.
		for i := 2; !b.free(name, origin); i++ {
			name = fmt.Sprintf("%s-%s-%08x-%d%s", b.opts.SetPrefix, clean[:min(len(clean), maxOriginInName)], h.Sum32(), i, k.suffix())
		}
	}
	return name
}

func (b *Backend) free(name, origin string) bool {
	o, used := b.names[name]
	return !used || o == origin
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
	found, err := b.ours(c)
	if err != nil {
		return err
	}
	if found {
		c.DelTable(b.table)
	}
	b.forget()
	c.AddTable(b.table)
	for _, ch := range b.chains() {
		c.AddChain(ch)
		c.AddRule(&nftables.Rule{Table: b.table, Chain: ch, Exprs: acceptReplies(),
			UserData: userdata.AppendString(nil, userdata.TypeComment, bouncer.Marker)})
	}
	created := map[setKey]*nftables.Set{}
	err = b.add(c, elems, created)
	if err == nil {
		err = c.Flush()
	}
	if err != nil {
		return fmt.Errorf("nftables: create table %s with %d elements: %w", b.opts.Table, len(elems), err)
	}
	b.commit(created)
	return nil
}

// ours reports whether our table exists, and refuses one with our name
// that we did not create: no rule of it carries bouncer.Marker.
func (b *Backend) ours(c *nftables.Conn) (bool, error) {
	found, err := b.exists(c)
	if err != nil || !found {
		return false, err
	}
	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		return false, fmt.Errorf("nftables: list chains: %w", err)
	}
	for _, ch := range chains {
		if ch.Table == nil || ch.Table.Name != b.opts.Table {
			continue
		}
		rules, err := c.GetRules(b.table, ch)
		if err != nil {
			return false, fmt.Errorf("nftables: rules of %s: %w", ch.Name, err)
		}
		for _, r := range rules {
			if cm, _ := userdata.GetString(r.UserData, userdata.TypeComment); cm == bouncer.Marker {
				return true, nil
			}
		}
	}
	return false, fmt.Errorf("nftables: table inet %s exists but crowdsec-apiban-bridge did not create it (no rule commented %q): "+
		"not touching it; choose another bouncer.table, or delete it yourself if it is a leftover", b.opts.Table, bouncer.Marker)
}

// ctDirReply is IP_CT_DIR_REPLY (linux/netfilter/nf_conntrack_tuple_common.h).
const ctDirReply = 1

// acceptReplies is `ct state established,related ct direction reply
// accept`: packets answering a connection this host opened (to LAPI,
// APIBAN, DNS) are never dropped, even from a banned address. The accept
// ends only our chain: the host's other chains still see the packet.
// Traffic a banned address starts, a UDP flood already tracked included,
// flows in the original direction and still meets the drop rules.
func acceptReplies() []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binary.NativeEndian.AppendUint32(nil, expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
		&expr.Ct{Register: 1, Key: expr.CtKeyDIRECTION},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{ctDirReply}},
		&expr.Verdict{Kind: expr.VerdictAccept},
	}
}

// chains are our base chains, one per hook in use.
func (b *Backend) chains() []*nftables.Chain {
	prio := nftables.ChainPriority(b.opts.Priority)
	var out []*nftables.Chain
	for _, h := range []struct {
		name string
		hook *nftables.ChainHook
	}{{b.opts.InputChain, nftables.ChainHookInput}, {b.opts.ForwardChain, nftables.ChainHookForward}} {
		if h.name != "" {
			out = append(out, &nftables.Chain{Name: h.name, Table: b.table, Type: nftables.ChainTypeFilter, Hooknum: h.hook, Priority: &prio})
		}
	}
	return out
}

// ensure queues the creation of an origin's set of one kind, and of its
// drop rule in every chain, unless the set exists. New sets are returned
// in created and known to the backend only once the batch succeeded.
func (b *Backend) ensure(c *nftables.Conn, key setKey, created map[setKey]*nftables.Set) (*nftables.Set, error) {
	if s := b.sets[key]; s != nil {
		return s, nil
	}
	if s := created[key]; s != nil {
		return s, nil
	}
	s := &nftables.Set{Table: b.table, Name: b.setName(key.origin, key.kind), HasTimeout: true, Interval: key.kind.ranges,
		KeyType: nftables.TypeIPAddr, Comment: comment(key.origin)}
	if key.kind.v6 {
		s.KeyType = nftables.TypeIP6Addr
	}
	if err := c.AddSet(s, nil); err != nil {
		return nil, fmt.Errorf("set %s: %w", s.Name, err)
	}
	for _, ch := range b.chains() {
		c.AddRule(&nftables.Rule{Table: b.table, Chain: ch, Exprs: dropFrom(s, key.kind.v6),
			UserData: userdata.AppendString(nil, userdata.TypeComment, comment(key.origin))})
	}
	created[key] = s
	b.names[s.Name] = key.origin
	return s, nil
}

// commit makes the sets a successful batch created known.
func (b *Backend) commit(created map[setKey]*nftables.Set) {
	maps.Copy(b.sets, created)
}

// rollback forgets the names of sets a refused batch would have created.
func (b *Backend) rollback(created map[setKey]*nftables.Set) {
	for _, s := range created {
		delete(b.names, s.Name)
	}
}

// maxComment bounds the origin in a set's and a rule's comment: the
// kernel takes 256 bytes of userdata, and an interval set's userdata also
// holds google/nftables' key byte order (6 bytes) besides the comment's
// type, length and terminating zero.
const maxComment = 200

// comment is the origin as kept in a set's and a rule's comment.
func comment(origin string) string { return bouncer.CutOrigin(origin, maxComment) }

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

// Apply implements bouncer.Backend. An origin's first element of a kind
// creates its set and drop rules in the same batch.
func (b *Backend) Apply(_ context.Context, ch bouncer.Changes) error {
	if ch.Empty() {
		return nil
	}
	c, err := b.conn()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	created, err := b.queue(c, ch)
	if err == nil {
		err = c.Flush()
	}
	if err != nil {
		b.rollback(created)
		return fmt.Errorf("nftables: apply %d deletes, %d refreshes, %d renewals, %d adds to table %s: %w",
			len(ch.Delete), len(ch.Refresh), len(ch.Renew), len(ch.Add), b.opts.Table, err)
	}
	b.commit(created)
	return nil
}

// queue puts a tick's changes in the batch. A renewal is add, delete, add:
// whether the old copy is still in the set or already gone, the first add
// makes sure there is one to delete, and the last leaves exactly one copy
// with the new timeout (a plain add would keep an old copy's timeout).
func (b *Backend) queue(c *nftables.Conn, ch bouncer.Changes) (map[setKey]*nftables.Set, error) {
	created := map[setKey]*nftables.Set{}
	steps := []struct {
		add   bool
		elems []bouncer.Element
	}{
		{false, slices.Concat(ch.Delete, ch.Refresh)},
		{true, ch.Renew},
		{false, ch.Renew},
		{true, slices.Concat(ch.Refresh, ch.Renew, ch.Add)},
	}
	for _, st := range steps {
		if len(st.elems) == 0 {
			continue
		}
		if !st.add {
			if err := b.del(c, st.elems, created); err != nil {
				return created, err
			}
			continue
		}
		if err := b.add(c, st.elems, created); err != nil {
			return created, err
		}
	}
	return created, nil
}

// add queues elems, each in its origin's set of its kind, creating the
// sets that do not exist yet (recorded in created, which the rest of the
// batch shares).
func (b *Backend) add(c *nftables.Conn, elems []bouncer.Element, created map[setKey]*nftables.Set) error {
	per := group(elems, true)
	for _, k := range sortedKeys(per) {
		s, err := b.ensure(c, k, created)
		if err != nil {
			return err
		}
		if err := each(s, per[k], c.SetAddElements); err != nil {
			return err
		}
	}
	return nil
}

// del queues the deletion of elems from their origin's set (one of the
// kernel's, or one this batch creates).
func (b *Backend) del(c *nftables.Conn, elems []bouncer.Element, created map[setKey]*nftables.Set) error {
	per := group(elems, false)
	for _, k := range sortedKeys(per) {
		s := b.sets[k]
		if s == nil {
			s = created[k]
		}
		if s == nil {
			return fmt.Errorf("no set of origin %q for %s elements", k.origin, k.kind.suffix()[1:])
		}
		if err := each(s, per[k], c.SetDeleteElements); err != nil {
			return err
		}
	}
	return nil
}

// sortedKeys orders a batch's sets, so that batches are reproducible.
func sortedKeys[V any](m map[setKey]V) []setKey {
	keys := slices.Collect(maps.Keys(m))
	slices.SortFunc(keys, func(a, b setKey) int {
		if c := strings.Compare(a.origin, b.origin); c != 0 {
			return c
		}
		return slices.Index(kinds, a.kind) - slices.Index(kinds, b.kind)
	})
	return keys
}

// each queues the elements of one set in chunks. An interval's start and
// end always travel in the same chunk.
func each(s *nftables.Set, els []nftables.SetElement, op func(*nftables.Set, []nftables.SetElement) error) error {
	for len(els) > 0 {
		n := min(chunk, len(els))
		if n < len(els) && els[n].IntervalEnd {
			n++
		}
		if err := op(s, els[:n]); err != nil {
			return fmt.Errorf("set %s: %w", s.Name, err)
		}
		els = els[n:]
	}
	return nil
}

func kindOf(p netip.Prefix) setKind {
	return setKind{v6: p.Addr().Is6(), ranges: isRange(p)}
}

// group encodes elems into one element list per set (timeouts only when
// adding). A full load is 100,000 elements: each list is allocated once at
// its size and every key is cut from one buffer, instead of a slice per
// element and lists grown by append.
func group(elems []bouncer.Element, timeouts bool) map[setKey][]nftables.SetElement {
	sizes, keyBytes := map[setKey]int{}, 0
	for _, e := range elems {
		n := width(e.Prefix)
		sizes[setKey{e.Origin, kindOf(e.Prefix)}] += n
		keyBytes += n * e.Prefix.Addr().BitLen() / 8
	}
	per := make(map[setKey][]nftables.SetElement, len(sizes))
	for k, n := range sizes {
		per[k] = make([]nftables.SetElement, 0, n)
	}
	keys := make([]byte, 0, keyBytes)
	for _, e := range elems {
		k := setKey{e.Origin, kindOf(e.Prefix)}
		timeout := e.Timeout
		if !timeouts {
			timeout = 0
		}
		per[k], keys = encode(per[k], keys, e.Prefix, timeout)
	}
	return per
}

// width is how many set elements p takes: 1, or 2 for a range (its end).
func width(p netip.Prefix) int {
	if isRange(p) && lastAddr(p).Next().IsValid() {
		return 2
	}
	return 1
}

// encode appends p's elements to els, their keys to keys: a single
// address as one element, a range as the interval [first, last+1) — a
// start element carrying the timeout and an end element (the kernel
// refuses a timeout on an interval end). A range reaching the top of the
// address space has no end element.
func encode(els []nftables.SetElement, keys []byte, p netip.Prefix, timeout time.Duration) ([]nftables.SetElement, []byte) {
	var key []byte
	first := p.Masked().Addr()
	key, keys = cut(keys, first)
	els = append(els, nftables.SetElement{Key: key, Timeout: timeout})
	if !isRange(p) {
		return els, keys
	}
	if end := lastAddr(p).Next(); end.IsValid() {
		key, keys = cut(keys, end)
		els = append(els, nftables.SetElement{Key: key, IntervalEnd: true})
	}
	return els, keys
}

// cut appends a's bytes to buf and returns them as a slice of their own
// (its capacity ends with it, so that later appends never write into it).
func cut(buf []byte, a netip.Addr) (key, rest []byte) {
	n := len(buf)
	if a.Is4() {
		b := a.As4()
		buf = append(buf, b[:]...)
	} else {
		b := a.As16()
		buf = append(buf, b[:]...)
	}
	return buf[n:len(buf):len(buf)], buf
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

// Cleanup implements bouncer.Backend: delete our table, if it exists and
// is ours.
func (b *Backend) Cleanup(_ context.Context) error {
	c, err := b.conn()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	found, err := b.ours(c)
	if err != nil || !found {
		return err
	}
	c.DelTable(b.table)
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables: delete table %s: %w", b.opts.Table, err)
	}
	return nil
}

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
