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
	"maps"
	"slices"
	"syscall"

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
