package ipset

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"time"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bouncer"
)

// addSlots records origins as the slots from first on.
func (b *Backend) addSlots(ctx context.Context, slotOf map[string]int) error {
	name := b.registry()
	origins := slices.Sorted(maps.Keys(slotOf))
	err := b.c.batch(ctx, nl.IPSET_CMD_ADD, name, len(origins), func(dst []byte, i int, line uint32) []byte {
		return appendSlot(dst, slotOf[origins[i]], origins[i], line)
	})
	if err != nil {
		return fmt.Errorf("ipset: record the origins of %d slots in %s: %w", len(origins), name, err)
	}
	return nil
}

// Lookup implements bouncer.Looker: the elements of our sets of addr's
// family that hold addr (a hash:net set may hold a range and an address
// inside it side by side), narrowest first, with the origin the registry
// gives their slot. It only reads. bouncer.ErrNotLoaded when neither the
// registry nor any set of that family exists.
func (b *Backend) Lookup(_ context.Context, addr netip.Addr) ([]bouncer.Match, error) {
	addr = addr.Unmap()
	f := familyOf(netip.PrefixFrom(addr, addr.BitLen()))
	exists, origins, err := b.registryState()
	if err != nil {
		return nil, err
	}
	if !exists {
		return nil, fmt.Errorf("%w: no ipset %s", bouncer.ErrNotLoaded, b.registry())
	}
	sets := b.familySets(origins, f)
	var out []bouncer.Match
	for _, s := range sets {
		found, err := b.lookupIn(s.name, addr)
		if err != nil {
			return nil, err
		}
		for _, m := range found {
			m.Origin = origins[s.slot]
			out = append(out, m)
		}
	}
	slices.SortStableFunc(out, func(x, y bouncer.Match) int { return y.Prefix.Bits() - x.Prefix.Bits() })
	return out, nil
}

type slotSet struct {
	name string
	slot int
}

// familySets names the element sets of a family of the recorded slots.
func (b *Backend) familySets(recorded map[int]string, f family) []slotSet {
	var out []slotSet
	for slot := range recorded {
		out = append(out, slotSet{b.set(slot, f), slot})
	}
	slices.SortFunc(out, func(x, y slotSet) int { return x.slot - y.slot })
	return out
}

// lookupIn returns the members of set that hold addr. A set gone since it
// was listed (a full load destroyed it) holds nothing.
func (b *Backend) lookupIn(set string, addr netip.Addr) ([]bouncer.Match, error) {
	ms, err := b.c.members(set)
	if errors.Is(err, unix.ENOENT) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ipset: list %s: %w", set, err)
	}
	var out []bouncer.Match
	for _, m := range ms {
		if !m.addr.IsValid() {
			continue
		}
		a := m.addr.Unmap()
		bits := m.cidr
		if bits == 0 || bits > a.BitLen() {
			bits = a.BitLen() // hash:net holds no /0; no CIDR means one address
		}
		p := netip.PrefixFrom(a, bits).Masked()
		if p.Contains(addr) {
			out = append(out, bouncer.Match{Set: set, Prefix: p, Left: time.Duration(m.timeout) * time.Second})
		}
	}
	return out, nil
}
