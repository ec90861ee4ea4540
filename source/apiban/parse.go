package apiban

import (
	"errors"
	"net/netip"
	"strings"
)

// ParseEntry turns one list entry into a prefix: a single address
// becomes a /32 or /128, a CIDR is masked to its network, IPv4-mapped
// IPv6 is unmapped, surrounding whitespace is ignored. It refuses zones
// (they mean nothing off-link) and a /0, which would block a whole
// address family: one bad entry must not cut a host off the internet.
func ParseEntry(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return netip.Prefix{}, errors.New("empty entry")
	}
	var p netip.Prefix
	var err error
	if strings.Contains(s, "/") {
		p, err = parsePrefix(s)
	} else {
		p, err = parseAddr(s)
	}
	if err != nil {
		return netip.Prefix{}, err
	}
	if p.Bits() == 0 {
		return netip.Prefix{}, errors.New("prefix /0 covers every address")
	}
	return p, nil
}

func parseAddr(s string) (netip.Prefix, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	if a.Zone() != "" {
		return netip.Prefix{}, errors.New("address has a zone")
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func parsePrefix(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a := p.Addr()
	if a.Is4In6() {
		// ::ffff:a.b.c.d/n is a.b.c.d/(n-96); below 96 bits it also
		// covers non-mapped IPv6 and has no IPv4 form.
		if p.Bits() < 96 {
			return netip.Prefix{}, errors.New("IPv4-mapped prefix shorter than /96")
		}
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p.Masked(), nil
}
