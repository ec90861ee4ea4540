// Package ipset is the bouncer's backend for hosts without nftables:
// ipset hash:net sets with per-element timeouts, managed over netlink,
// and one iptables/ip6tables chain of ours that drops what they hold.
// Each origin's sets are named by a slot number, a registry set names the
// origin of each slot, and a full load swaps in a whole new generation of
// sets; why, and why a tick is not a transaction: docs/bouncer.md
// ("ipset").
package ipset

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bouncer"
)

// MaxTimeout is the longest element timeout ipset takes; longer bans are
// cut to it.
const MaxTimeout = 2147483 * time.Second

// maxElements is each set's maxelem.
const maxElements = 1 << 20

// Options names the objects.
type Options struct {
	// SetPrefix names the sets: PREFIX-N-v4 and PREFIX-N-v6 for slot N,
	// and PREFIX-origins. At most
	// MaxSetPrefix characters.
	SetPrefix string
	// Chain is our iptables chain (the same name in ip6tables).
	Chain string
	// Hooks are the built-in chains that jump to ours: INPUT, FORWARD.
	Hooks []string
	// NetNSFd, when not 0, is a network namespace to work in (tests);
	// CommandPrefix then runs iptables there (ip netns exec NAME).
	NetNSFd       int
	CommandPrefix []string
	// Log gets which origin each slot holds; nil means logrus's
	// standard logger.
	Log logrus.FieldLogger
}

// Backend implements bouncer.Backend.
type Backend struct {
	opts Options
	log  logrus.FieldLogger
	// h creates and destroys sets; c carries elements and dumps.
	h *netlink.Handle
	c *conn

	mu sync.Mutex
	// slotOf is the slot of each origin with sets in the kernel. Slot
	// numbers are not dense: each full load takes numbers not in use.
	slotOf map[string]int
}

type family struct {
	v6       bool
	suffix   string
	iptables string
	ipType   string
	af       uint8
}

var families = []family{
	{false, "v4", "iptables", "ipv4", unix.AF_INET},
	{true, "v6", "ip6tables", "ipv6", unix.AF_INET6},
}

func familyOf(p netip.Prefix) family {
	if p.Addr().Is6() {
		return families[1]
	}
	return families[0]
}

// New opens netlink sockets (in the namespace, if one is given).
func New(opts Options) (*Backend, error) {
	if err := checkPrefix(opts.SetPrefix); err != nil {
		return nil, err
	}
	if opts.Chain == "" || len(opts.Hooks) == 0 {
		return nil, errors.New("ipset: a chain and at least one hook are required")
	}
	var h *netlink.Handle
	var err error
	if opts.NetNSFd != 0 {
		h, err = netlink.NewHandleAt(netns.NsHandle(opts.NetNSFd), unix.NETLINK_NETFILTER)
	} else {
		h, err = netlink.NewHandle(unix.NETLINK_NETFILTER)
	}
	if err != nil {
		return nil, fmt.Errorf("ipset: netlink: %w", err)
	}
	c, err := dial(opts.NetNSFd)
	if err != nil {
		h.Close()
		return nil, fmt.Errorf("ipset: netlink: %w", err)
	}
	b := &Backend{opts: opts, log: opts.Log, h: h, c: c, slotOf: map[string]int{}}
	if b.log == nil {
		b.log = logrus.StandardLogger()
	}
	return b, nil
}

// MaxTimeout implements bouncer.TimeoutCapper: ipset's longest element
// timeout.
func (b *Backend) MaxTimeout() time.Duration { return MaxTimeout }

// Name implements bouncer.Backend.
func (b *Backend) Name() string { return "ipset" }

// Nested implements bouncer.Backend: hash:net accepts overlaps.
func (b *Backend) Nested() bool { return true }

// Close implements bouncer.Backend.
func (b *Backend) Close() error {
	b.h.Close()
	b.c.close()
	return nil
}

func (b *Backend) set(slot int, f family) string { return setName(b.opts.SetPrefix, slot, f) }
func (b *Backend) registry() string              { return b.opts.SetPrefix + regSuffix }

// SetName is the set that holds origin's elements of a family, if the
// origin has a slot in this process.
func (b *Backend) SetName(origin string, v6 bool) (string, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	slot, ok := b.slotOf[origin]
	if !ok {
		return "", false
	}
	return b.set(slot, families[btoi(v6)]), true
}

// SetNames lists this process's element sets, by slot, v4 then v6.
func (b *Backend) SetNames() []string {
	var out []string
	for _, slot := range slices.Sorted(maps.Values(b.slotMap())) {
		for _, f := range families {
			out = append(out, b.set(slot, f))
		}
	}
	return out
}

func btoi(v bool) int {
	if v {
		return 1
	}
	return 0
}

// slotMap returns a copy of the origin -> slot map.
func (b *Backend) slotMap() map[string]int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return maps.Clone(b.slotOf)
}

// publish makes slotOf the current slot map.
func (b *Backend) publish(slotOf map[string]int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.slotOf = maps.Clone(slotOf)
}

// freeSlots returns the n lowest slot numbers that neither taken holds
// nor any set in the kernel (exists) uses.
func (b *Backend) freeSlots(n int, taken map[int]bool, exists map[string]bool) ([]int, error) {
	var out []int
	for slot := 0; len(out) < n; slot++ {
		if slot >= MaxSlots {
			return nil, fmt.Errorf("ipset: %d more origins, but set names hold at most %d slots (%d in use)", n, MaxSlots, len(taken))
		}
		if taken[slot] || exists[b.set(slot, families[0])] || exists[b.set(slot, families[1])] {
			continue
		}
		out = append(out, slot)
	}
	return out, nil
}

func (b *Backend) logSlot(slot int, origin string) {
	b.log.WithFields(logrus.Fields{"origin": origin, "slot": slot,
		"sets": b.set(slot, families[0]) + " " + b.set(slot, families[1])}).Info("bouncer: ipset sets for origin")
}

// Reconcile implements bouncer.Backend with a full load: a new
// generation of sets, one iptables-restore commit per family, then the
// old generation destroyed (docs/bouncer.md, "ipset"). Nothing is done
// when the registry or the chain with our names is not ours.
func (b *Backend) Reconcile(ctx context.Context, elems []bouncer.Element) error {
	if err := b.checkChains(ctx); err != nil {
		return err
	}
	exists, recorded, err := b.registryState()
	if err != nil {
		return err
	}
	names, err := b.kernelNames()
	if err != nil {
		return err
	}
	taken := map[int]bool{}
	for slot := range recorded {
		taken[slot] = true
	}
	slotOf, bySet, err := b.plan(elems, taken, names)
	if err != nil {
		return err
	}
	if err := b.ensureRegistry(ctx, exists); err != nil {
		return err
	}
	// Recorded before they are made: a crash leaves nothing unrecorded.
	if err := b.addSlots(ctx, slotOf); err != nil {
		return err
	}
	for _, slot := range slotOf {
		for _, f := range families {
			name := b.set(slot, f)
			if err := b.fill(ctx, name, f, bySet[name]); err != nil {
				return err
			}
		}
	}
	slots := slices.Sorted(maps.Values(slotOf))
	if err := b.replaceRules(ctx, slots); err != nil {
		return err
	}
	b.publish(slotOf)
	for origin, slot := range slotOf {
		b.logSlot(slot, origin)
	}
	// The previous generation, and what a crash left recorded.
	if err := b.destroySlots(ctx, slices.Sorted(maps.Keys(recorded))); err != nil {
		b.log.WithError(err).Warn("bouncer: cannot remove a previous generation's ipset")
	}
	return nil
}

// plan gives the origins, in byte order, the lowest slots that are neither
// taken (recorded) nor named by a set in the kernel, and groups the
// elements by the set they go in.
func (b *Backend) plan(elems []bouncer.Element, taken map[int]bool, existing map[string]bool) (map[string]int, map[string][]bouncer.Element, error) {
	var origins []string
	for _, e := range elems {
		origins = append(origins, e.Origin)
	}
	slices.Sort(origins)
	origins = slices.Compact(origins)
	free, err := b.freeSlots(len(origins), taken, existing)
	if err != nil {
		return nil, nil, err
	}
	slotOf := make(map[string]int, len(origins))
	for i, o := range origins {
		slotOf[o] = free[i]
	}
	bySet := map[string][]bouncer.Element{}
	for _, e := range elems {
		name := b.set(slotOf[e.Origin], familyOf(e.Prefix))
		bySet[name] = append(bySet[name], e)
	}
	return slotOf, bySet, nil
}

// fill creates the set name, which no rule uses yet, with elems.
func (b *Backend) fill(ctx context.Context, name string, f family, elems []bouncer.Element) error {
	if err := b.create(name, f); err != nil {
		return err
	}
	return b.send(ctx, nl.IPSET_CMD_ADD, name, elems)
}

func (b *Backend) create(name string, f family) error {
	zero := uint32(0) // timeout 0 at creation: per-element timeouts
	err := b.h.IpsetCreate(name, "hash:net", netlink.IpsetCreateOptions{Timeout: &zero, Family: f.af, MaxElements: maxElements})
	if err != nil {
		return fmt.Errorf("ipset: create %s: %w", name, err)
	}
	return nil
}

// destroy removes one of our sets; an absent set is no error.
func (b *Backend) destroy(name string) error {
	err := b.h.IpsetDestroy(name)
	if err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("ipset: destroy %s: %w", name, err)
	}
	return nil
}

// send adds (with their timeouts) or deletes elems in set, batched.
func (b *Backend) send(ctx context.Context, cmd int, set string, elems []bouncer.Element) error {
	err := b.c.batch(ctx, cmd, set, len(elems), func(dst []byte, i int, line uint32) []byte {
		var secs uint32
		if cmd == nl.IPSET_CMD_ADD {
			secs = timeoutSecs(elems[i].Timeout)
		}
		return appendElem(dst, elems[i].Prefix, secs, line)
	})
	verb := "add"
	if cmd == nl.IPSET_CMD_DEL {
		verb = "delete"
	}
	var ee *elemError
	switch {
	case errors.As(err, &ee):
		return fmt.Errorf("ipset: %s %s in %s: %w", verb, elems[ee.index].Prefix, set, ee.err)
	case err != nil:
		return fmt.Errorf("ipset: %s %d elements in %s: %w", verb, len(elems), set, err)
	}
	return nil
}

// Apply implements bouncer.Backend: the sets and rules of new origins
// first, then the deletes, then refreshes and adds (an add replaces the
// timeout), each set's in as few messages as fit.
func (b *Backend) Apply(ctx context.Context, c bouncer.Changes) error {
	if err := b.newSlots(ctx, c.Refresh, c.Renew, c.Add); err != nil {
		return err
	}
	dels, err := b.group(c.Delete)
	if err != nil {
		return err
	}
	// An add replaces an element's timeout, present or not: a renewal is
	// an add.
	adds, err := b.group(slices.Concat(c.Refresh, c.Renew, c.Add))
	if err != nil {
		return err
	}
	for _, g := range dels {
		if err := b.send(ctx, nl.IPSET_CMD_DEL, g.set, g.elems); err != nil {
			return err
		}
	}
	for _, g := range adds {
		if err := b.send(ctx, nl.IPSET_CMD_ADD, g.set, g.elems); err != nil {
			return err
		}
	}
	return nil
}

type setElems struct {
	set   string
	elems []bouncer.Element
}

// group splits elems by the set of their origin and family, in the order
// the sets first appear.
func (b *Backend) group(elems []bouncer.Element) ([]setElems, error) {
	var out []setElems
	index := map[string]int{}
	for _, e := range elems {
		name, ok := b.SetName(e.Origin, e.Prefix.Addr().Is6())
		if !ok {
			// Not in any set we made: rebuild rather than guess.
			return nil, fmt.Errorf("ipset: %s: origin %q has no set", e.Prefix, e.Origin)
		}
		i, ok := index[name]
		if !ok {
			i = len(out)
			index[name] = i
			out = append(out, setElems{set: name})
		}
		out[i].elems = append(out[i].elems, e)
	}
	return out, nil
}

// newSlots gives the next slots to the origins of lists that have none
// yet, with their sets, registry entry and drop rules.
func (b *Backend) newSlots(ctx context.Context, lists ...[]bouncer.Element) error {
	for _, l := range lists {
		for _, e := range l {
			if _, ok := b.SetName(e.Origin, false); ok {
				continue
			}
			if err := b.newSlot(ctx, e.Origin); err != nil {
				return err
			}
		}
	}
	return nil
}

func (b *Backend) newSlot(ctx context.Context, origin string) error {
	_, recorded, err := b.registryState()
	if err != nil {
		return err
	}
	names, err := b.kernelNames()
	if err != nil {
		return err
	}
	slotOf := b.slotMap()
	taken := map[int]bool{}
	for slot := range recorded {
		taken[slot] = true
	}
	for _, slot := range slotOf {
		taken[slot] = true
	}
	free, err := b.freeSlots(1, taken, names)
	if err != nil {
		return fmt.Errorf("ipset: origin %q: %w", origin, err)
	}
	slot := free[0]
	// Recorded before it is made: a crash leaves nothing unrecorded.
	if err := b.addSlots(ctx, map[string]int{origin: slot}); err != nil {
		return err
	}
	for _, f := range families {
		if err := b.create(b.set(slot, f), f); err != nil {
			return err
		}
	}
	for _, f := range families {
		if err := b.addDropRule(ctx, f, slot); err != nil {
			return err
		}
	}
	slotOf[origin] = slot
	b.publish(slotOf)
	b.logSlot(slot, origin)
	return nil
}

// Cleanup implements bouncer.Backend: the chain and jumps, then every set
// the registry records, then the registry. Nothing is touched when the
// registry or the chain with our names is not ours.
func (b *Backend) Cleanup(ctx context.Context) error {
	exists, recorded, err := b.registryState()
	if err != nil {
		return err
	}
	if err := b.teardownRules(ctx); err != nil {
		return err
	}
	b.publish(nil)
	if !exists {
		return nil
	}
	if err := b.destroySlots(ctx, slices.Sorted(maps.Keys(recorded))); err != nil {
		return err
	}
	return b.destroy(b.registry())
}
