package ipset

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bouncer"
)

// Ownership: the registry marked with bouncer.Marker, the element sets of
// the slots it records, and the chain whose reply rule carries the marker
// (docs/bouncer.md, "Objects it owns"). A slot is recorded before its sets
// are created and forgotten only after they are destroyed.

// markerPort is the registry's element that marks it as ours.
const markerPort = MaxSlots

// registryState reads the registry: whether it exists, and the origin of
// each slot it records. A registry without the marker is an error.
func (b *Backend) registryState() (bool, map[int]string, error) {
	ms, err := b.c.members(b.registry())
	if errors.Is(err, unix.ENOENT) {
		return false, nil, nil
	}
	if err != nil {
		return false, nil, fmt.Errorf("ipset: list %s: %w", b.registry(), err)
	}
	origins := make(map[int]string, len(ms))
	marked := false
	for _, m := range ms {
		if int(m.port) == markerPort {
			marked = m.comment == bouncer.Marker
			continue
		}
		origins[int(m.port)] = m.comment
	}
	if !marked {
		return true, nil, fmt.Errorf("ipset: set %s exists but crowdsec-apiban-bridge did not create it (no element %d commented %q): "+
			"not touching it or any set named %s-*; choose another bouncer.set_prefix, or destroy it yourself if it is a leftover",
			b.registry(), markerPort, bouncer.Marker, b.opts.SetPrefix)
	}
	return true, origins, nil
}

// ensureRegistry creates the marked registry unless it exists.
func (b *Backend) ensureRegistry(ctx context.Context, exists bool) error {
	if exists {
		return nil
	}
	name := b.registry()
	// Revision 2 brought comments (vishvananda/netlink would pick 0).
	opts := netlink.IpsetCreateOptions{PortFrom: 0, PortTo: markerPort, Comments: true, Revision: 2}
	if err := b.h.IpsetCreate(name, "bitmap:port", opts); err != nil {
		return fmt.Errorf("ipset: create %s: %w", name, err)
	}
	err := b.c.batch(ctx, nl.IPSET_CMD_ADD, name, 1, func(dst []byte, _ int, line uint32) []byte {
		return appendSlot(dst, markerPort, bouncer.Marker, line)
	})
	if err != nil {
		return fmt.Errorf("ipset: mark %s: %w", name, err)
	}
	return nil
}

// forgetSlots removes slots, whose sets are gone, from the registry.
func (b *Backend) forgetSlots(ctx context.Context, slots []int) error {
	if len(slots) == 0 {
		return nil
	}
	err := b.c.batch(ctx, nl.IPSET_CMD_DEL, b.registry(), len(slots), func(dst []byte, i int, line uint32) []byte {
		return appendNested(dst, nl.IPSET_ATTR_DATA, func(d []byte) []byte {
			d = appendAttr(d, nl.IPSET_ATTR_PORT|nl.NLA_F_NET_BYTEORDER, binary.BigEndian.AppendUint16(nil, uint16(slots[i])))
			return appendAttr(d, nl.IPSET_ATTR_LINENO, binary.NativeEndian.AppendUint32(nil, line))
		})
	})
	if err != nil {
		return fmt.Errorf("ipset: forget %d slots in %s: %w", len(slots), b.registry(), err)
	}
	return nil
}

// destroySlots destroys the sets of recorded slots, then forgets the
// slots whose sets are gone. A set that cannot go (another program's rule
// refers to it) stays recorded, and is logged.
func (b *Backend) destroySlots(ctx context.Context, slots []int) error {
	var gone []int
	var errs []error
	for _, slot := range slots {
		var failed bool
		for _, f := range families {
			if err := b.destroy(b.set(slot, f)); err != nil {
				errs = append(errs, err)
				failed = true
			}
		}
		if !failed {
			gone = append(gone, slot)
		}
	}
	slices.Sort(gone)
	return errors.Join(append(errs, b.forgetSlots(ctx, gone))...)
}

// kernelNames lists every set in the kernel, ours or not.
func (b *Backend) kernelNames() (map[string]bool, error) {
	names, err := b.c.names()
	if err != nil {
		return nil, fmt.Errorf("ipset: list sets: %w", err)
	}
	out := make(map[string]bool, len(names))
	for _, n := range names {
		out[n] = true
	}
	return out, nil
}

// chainState says whether our iptables chain exists in a family, and
// refuses one with our name that we did not create.
func (b *Backend) chainState(ctx context.Context, f family) (bool, error) {
	out, err := b.iptablesOutput(ctx, f, "-S", b.opts.Chain)
	if err != nil {
		return false, nil // no such chain
	}
	if strings.Contains(out, "--comment "+bouncer.Marker) || strings.Contains(out, `--comment "`+bouncer.Marker+`"`) {
		return true, nil
	}
	return true, fmt.Errorf("ipset: %s chain %s exists but crowdsec-apiban-bridge did not create it (no rule commented %q): "+
		"not touching it; choose another bouncer.iptables_chain, or delete it yourself if it is a leftover", f.iptables, b.opts.Chain, bouncer.Marker)
}

// checkChains refuses to go on when a family has a chain with our name
// that is not ours.
func (b *Backend) checkChains(ctx context.Context) error {
	for _, f := range families {
		if _, err := b.chainState(ctx, f); err != nil {
			return err
		}
	}
	return nil
}
