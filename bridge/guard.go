package bridge

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"time"
)

// ErrFlood is returned (wrapped) when a sync would push more new decisions
// than Options.MaxNewPerSync allows. A poisoned or broken feed that suddenly
// lists a huge number of addresses must not reach the firewall unnoticed:
// the push that would cross the cap is not made, the cursor stays where the
// last accepted push left it, and the engine refuses further pushes until the
// process is restarted (after an operator looked, or raised the cap).
var ErrFlood = errors.New("too many new decisions in one sync")

// tooWide reports whether p covers more addresses than the configured
// minimum prefix length of its family allows. A zero minimum means no limit.
func (o *Options) tooWide(p netip.Prefix) bool {
	min := o.MinPrefixV4
	if p.Addr().Is6() {
		min = o.MinPrefixV6
	}
	return p.Bits() < min
}

// floodError builds the loud error of the cap, naming the numbers and the key.
func floodError(pushed, pending, limit int) error {
	return fmt.Errorf("%w: %d already pushed and %d more waiting exceed decisions.max_new_per_sync (%d); "+
		"nothing more is pushed until the bridge is restarted (check the feed, or raise the cap)",
		ErrFlood, pushed, pending, limit)
}

// addressFloodError is floodError for MaxAddressesPerSync.
func addressFloodError(covered, limit uint64) error {
	return fmt.Errorf("%w: the decisions of this sync would cover %d addresses, more than decisions.max_addresses_per_sync (%d); "+
		"nothing more is pushed until the bridge is restarted (check the feed, or raise the cap)",
		ErrFlood, covered, limit)
}

// addresses is how many addresses p covers, for MaxAddressesPerSync: IPv4
// addresses, and IPv6 /64s (one host's usual share), so that a /48 counts
// 65,536 and a single IPv6 address one.
func addresses(p netip.Prefix) uint64 {
	host := 32 - p.Bits()
	if p.Addr().Is6() {
		host = max(0, 64-p.Bits())
	}
	if host >= 63 {
		return 1 << 63
	}
	return 1 << host
}

// satAdd adds without wrapping around.
func satAdd(a, b uint64) uint64 {
	if a+b < a {
		return ^uint64(0)
	}
	return a + b
}

// Resolver is the part of net.Resolver SelfPrefixes needs.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// SelfPrefixes returns the addresses a feed must never ban because banning
// them would cut the bridge off: the host's own interface addresses and the
// addresses of the LAPI host. ifaceAddrs is net.InterfaceAddrs in production.
// A name that does not resolve is an error the caller may log and survive:
// the host's own addresses are still returned.
func SelfPrefixes(ctx context.Context, lapiURL string, ifaceAddrs func() ([]net.Addr, error), r Resolver) ([]netip.Prefix, error) {
	var out []netip.Prefix
	var errs []error
	addrs, err := ifaceAddrs()
	if err != nil {
		errs = append(errs, fmt.Errorf("listing interface addresses: %w", err))
	}
	for _, a := range addrs {
		if p, ok := hostPrefix(a); ok {
			out = append(out, p)
		}
	}
	lapiAddrs, err := lapiHostAddrs(ctx, lapiURL, r)
	if err != nil {
		errs = append(errs, err)
	}
	for _, a := range lapiAddrs {
		a = a.Unmap().WithZone("")
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, errors.Join(errs...)
}

// hostPrefix turns an interface address (an *net.IPNet such as
// 192.0.2.5/24) into the single address it names: the host owns that
// address, not its whole subnet.
func hostPrefix(a net.Addr) (netip.Prefix, bool) {
	var ip net.IP
	switch v := a.(type) {
	case *net.IPNet:
		ip = v.IP
	case *net.IPAddr:
		ip = v.IP
	default:
		return netip.Prefix{}, false
	}
	addr, ok := netip.AddrFromSlice(ip)
	if !ok {
		return netip.Prefix{}, false
	}
	addr = addr.Unmap()
	return netip.PrefixFrom(addr, addr.BitLen()), true
}

func lapiHostAddrs(ctx context.Context, lapiURL string, r Resolver) ([]netip.Addr, error) {
	u, err := url.Parse(lapiURL)
	if err != nil {
		return nil, fmt.Errorf("crowdsec.lapi_url: %w", err)
	}
	host := u.Hostname()
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{a}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	addrs, err := r.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, fmt.Errorf("resolving the LAPI host %q of crowdsec.lapi_url: %w", host, err)
	}
	return addrs, nil
}
