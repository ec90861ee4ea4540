// Package ipset is the bouncer's backend for hosts without nftables: two
// ipset hash:net sets with per-element timeouts (IPv4 and IPv6), managed
// over netlink, and one iptables/ip6tables chain of ours that drops what
// they hold, jumped to from INPUT (and FORWARD). iptables is run with our
// own chain and set names only, never decision data.
//
// hash:net holds a range and an address inside it side by side, so
// nothing is withheld. A full load fills a fresh set and swaps it in
// atomically; a tick's changes go element by element (ipset has no
// multi-element transaction), each one idempotent.
package ipset

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bouncer"
)

// MaxTimeout is the longest element timeout ipset takes; longer bans are
// cut to it.
const MaxTimeout = 2147483 * time.Second

// Options names the objects.
type Options struct {
	// SetPrefix names the sets PREFIX-v4 and PREFIX-v6 (and, during a
	// full load, PREFIX-v4-new and PREFIX-v6-new).
	SetPrefix string
	// Chain is our iptables chain (the same name in ip6tables).
	Chain string
	// Hooks are the built-in chains that jump to ours: INPUT, FORWARD.
	Hooks []string
	// NetNSFd, when not 0, is a network namespace to work in (tests);
	// CommandPrefix then runs iptables there (ip netns exec NAME).
	NetNSFd       int
	CommandPrefix []string
}

// Backend implements bouncer.Backend.
type Backend struct {
	opts Options
	h    *netlink.Handle
}

type family struct {
	v6       bool
	suffix   string
	iptables string
	af       uint8
}

var families = []family{
	{false, "-v4", "iptables", unix.AF_INET},
	{true, "-v6", "ip6tables", unix.AF_INET6},
}

// New opens a netlink handle (in the namespace, if one is given).
func New(opts Options) (*Backend, error) {
	if opts.SetPrefix == "" || opts.Chain == "" || len(opts.Hooks) == 0 {
		return nil, errors.New("ipset: a set prefix, a chain and at least one hook are required")
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
	return &Backend{opts: opts, h: h}, nil
}

// Name implements bouncer.Backend.
func (b *Backend) Name() string { return "ipset" }

// Nested implements bouncer.Backend: hash:net accepts overlaps.
func (b *Backend) Nested() bool { return true }

// Close implements bouncer.Backend.
func (b *Backend) Close() error {
	b.h.Close()
	return nil
}

func (b *Backend) set(f family) string    { return b.opts.SetPrefix + f.suffix }
func (b *Backend) newSet(f family) string { return b.opts.SetPrefix + f.suffix + "-new" }

// SetNames lists the live sets (v4, v6).
func (b *Backend) SetNames() []string { return []string{b.set(families[0]), b.set(families[1])} }

// Reconcile implements bouncer.Backend: each family's set is filled afresh
// and swapped in at once, then our iptables chain and jumps are rebuilt,
// so that leftovers of a crash are replaced, not duplicated.
func (b *Backend) Reconcile(ctx context.Context, elems []bouncer.Element) error {
	for _, f := range families {
		if err := b.load(f, elems); err != nil {
			return err
		}
	}
	b.teardownRules(ctx)
	for _, f := range families {
		if err := b.addRules(ctx, f); err != nil {
			return err
		}
	}
	return nil
}

func (b *Backend) load(f family, elems []bouncer.Element) error {
	live, fresh := b.set(f), b.newSet(f)
	target := live
	exists := b.exists(live)
	if exists {
		target = fresh
		if err := b.destroy(fresh); err != nil {
			return err
		}
	}
	zero := uint32(0) // timeout 0 at creation: per-element timeouts
	if err := b.h.IpsetCreate(target, "hash:net", netlink.IpsetCreateOptions{Timeout: &zero, Family: f.af, MaxElements: 1 << 20}); err != nil {
		return fmt.Errorf("ipset: create %s: %w", target, err)
	}
	for _, e := range elems {
		if e.Prefix.Addr().Is6() != f.v6 {
			continue
		}
		if err := b.h.IpsetAdd(target, entry(e.Prefix, e.Timeout)); err != nil {
			return fmt.Errorf("ipset: add to %s: %w", target, err)
		}
	}
	if !exists {
		return nil
	}
	if err := b.h.IpsetSwap(fresh, live); err != nil {
		return fmt.Errorf("ipset: swap %s and %s: %w", fresh, live, err)
	}
	return b.destroy(fresh)
}

func (b *Backend) exists(name string) bool {
	_, err := b.h.IpsetList(name)
	return err == nil
}

// destroy removes one of our sets; an absent set is no error.
func (b *Backend) destroy(name string) error {
	if !b.exists(name) {
		return nil
	}
	if err := b.h.IpsetDestroy(name); err != nil {
		return fmt.Errorf("ipset: destroy %s: %w", name, err)
	}
	return nil
}

// entry is the hash:net element of p; the timeout is in whole seconds,
// rounded up, within what ipset takes.
func entry(p netip.Prefix, timeout time.Duration) *netlink.IPSetEntry {
	secs := max(uint32(math.Ceil(min(timeout, MaxTimeout).Seconds())), 1)
	return &netlink.IPSetEntry{IP: net.IP(p.Masked().Addr().AsSlice()), CIDR: uint8(p.Bits()), Timeout: &secs, Replace: true}
}

// Apply implements bouncer.Backend. Adds replace an existing element, so a
// refresh is one add that resets the timeout.
func (b *Backend) Apply(_ context.Context, c bouncer.Changes) error {
	for _, p := range c.Delete {
		err := b.h.IpsetDel(b.set(familyOf(p)), entry(p, time.Second))
		// An element that already timed out is gone: fine.
		if err != nil && !errors.Is(err, nl.IPSetError(nl.IPSET_ERR_EXIST)) {
			return fmt.Errorf("ipset: delete %s: %w", p, err)
		}
	}
	for _, e := range append(c.Refresh, c.Add...) {
		if err := b.h.IpsetAdd(b.set(familyOf(e.Prefix)), entry(e.Prefix, e.Timeout)); err != nil {
			return fmt.Errorf("ipset: add %s: %w", e.Prefix, err)
		}
	}
	return nil
}

func familyOf(p netip.Prefix) family {
	if p.Addr().Is6() {
		return families[1]
	}
	return families[0]
}

// Cleanup implements bouncer.Backend.
func (b *Backend) Cleanup(ctx context.Context) error {
	b.teardownRules(ctx)
	var errs []error
	for _, f := range families {
		errs = append(errs, b.destroy(b.set(f)), b.destroy(b.newSet(f)))
	}
	return errors.Join(errs...)
}

// addRules creates our chain with its drop rule and the jumps to it.
func (b *Backend) addRules(ctx context.Context, f family) error {
	if err := b.iptables(ctx, f, "-N", b.opts.Chain); err != nil {
		return err
	}
	if err := b.iptables(ctx, f, "-A", b.opts.Chain, "-m", "set", "--match-set", b.set(f), "src", "-j", "DROP"); err != nil {
		return err
	}
	for _, hook := range b.opts.Hooks {
		if err := b.iptables(ctx, f, "-I", hook, "1", "-j", b.opts.Chain); err != nil {
			return err
		}
	}
	return nil
}

// teardownRules removes our jumps and chain, whatever is left of them.
// Errors mean "not there" and are ignored.
func (b *Backend) teardownRules(ctx context.Context) {
	for _, f := range families {
		for _, hook := range []string{"INPUT", "FORWARD"} {
			// Bounded: a crash loop could have left several jumps.
			for range 16 {
				if b.iptables(ctx, f, "-D", hook, "-j", b.opts.Chain) != nil {
					break
				}
			}
		}
		_ = b.iptables(ctx, f, "-F", b.opts.Chain)
		_ = b.iptables(ctx, f, "-X", b.opts.Chain)
	}
}

// iptables runs iptables or ip6tables with our own names as arguments.
func (b *Backend) iptables(ctx context.Context, f family, args ...string) error {
	argv := append(append(append([]string{}, b.opts.CommandPrefix...), f.iptables, "-w"), args...)
	out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ipset: %s %s: %w: %s", f.iptables, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Dropped implements bouncer.CounterReader: the counters of our DROP rules
// in iptables and ip6tables.
func (b *Backend) Dropped(ctx context.Context) (bouncer.Counters, error) {
	var total bouncer.Counters
	for _, f := range families {
		argv := append(append([]string{}, b.opts.CommandPrefix...), f.iptables, "-w", "-L", b.opts.Chain, "-v", "-x", "-n")
		out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).Output()
		if err != nil {
			return bouncer.Counters{}, fmt.Errorf("ipset: %s -L %s: %w", f.iptables, b.opts.Chain, err)
		}
		c := parseCounters(string(out))
		total.Packets += c.Packets
		total.Bytes += c.Bytes
	}
	return total, nil
}

// parseCounters sums the DROP lines of `iptables -L CHAIN -v -x -n`.
func parseCounters(out string) bouncer.Counters {
	var c bouncer.Counters
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || f[2] != "DROP" {
			continue
		}
		p, perr := strconv.ParseUint(f[0], 10, 64)
		by, berr := strconv.ParseUint(f[1], 10, 64)
		if perr == nil && berr == nil {
			c.Packets += p
			c.Bytes += by
		}
	}
	return c
}

// Lookup implements bouncer.Looker: the members of our set of addr's
// family that hold addr (a hash:net set may hold a range and an address
// inside it side by side), from one netlink list; nothing is changed.
// bouncer.ErrNotLoaded when the set does not exist.
func (b *Backend) Lookup(_ context.Context, addr netip.Addr) ([]bouncer.Match, error) {
	addr = addr.Unmap()
	name := b.set(familyOf(netip.PrefixFrom(addr, addr.BitLen())))
	res, err := b.h.IpsetList(name)
	if errors.Is(err, unix.ENOENT) {
		return nil, fmt.Errorf("%w: no ipset %s", bouncer.ErrNotLoaded, name)
	}
	if err != nil {
		return nil, fmt.Errorf("ipset: list %s: %w", name, err)
	}
	var out []bouncer.Match
	for _, e := range res.Entries {
		a, ok := netip.AddrFromSlice(e.IP)
		if !ok {
			continue
		}
		a = a.Unmap()
		bits := int(e.CIDR)
		if bits == 0 || bits > a.BitLen() {
			bits = a.BitLen() // hash:net holds no /0; no CIDR means one address
		}
		p := netip.PrefixFrom(a, bits).Masked()
		if !p.Contains(addr) {
			continue
		}
		m := bouncer.Match{Set: name, Prefix: p}
		if e.Timeout != nil {
			m.Left = time.Duration(*e.Timeout) * time.Second
		}
		out = append(out, m)
	}
	slices.SortFunc(out, func(x, y bouncer.Match) int { return y.Prefix.Bits() - x.Prefix.Bits() })
	return out, nil
}
