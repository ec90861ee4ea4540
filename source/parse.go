package source

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// The one parser of text into the normal form Page.Prefixes holds. Every
// reader of addresses (feed entries, LAPI's decisions and allowlists,
// configured allowlist CIDRs) goes through it, so that a value means the
// same prefix wherever it comes from. Whitespace is not trimmed: a caller
// whose input may carry it trims it first.

// ParseAddr parses a bare IP address. A zone is refused (it means nothing
// off-link); IPv4-mapped IPv6 becomes IPv4.
func ParseAddr(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, err
	}
	if a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("address %q has a zone", s)
	}
	return a.Unmap(), nil
}

// ParseCIDR parses address/bits. An IPv4-mapped prefix becomes the IPv4
// one (::ffff:a.b.c.d/n is a.b.c.d/(n-96)); below /96 it also covers
// non-mapped IPv6 and is refused. Host bits are kept: Masked gives the
// normal form, and a caller that warns about them compares the two.
func ParseCIDR(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	if a := p.Addr(); a.Is4In6() {
		if p.Bits() < 96 {
			return netip.Prefix{}, fmt.Errorf("IPv4-mapped prefix %q shorter than /96", s)
		}
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p, nil
}

// ParseUnmasked parses a bare address (as a /32 or /128) or a CIDR, with
// ParseAddr's and ParseCIDR's rules, host bits kept.
func ParseUnmasked(s string) (netip.Prefix, error) {
	if s == "" {
		return netip.Prefix{}, errors.New("empty address")
	}
	if strings.Contains(s, "/") {
		return ParseCIDR(s)
	}
	a, err := ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// ParsePrefix parses a bare address or a CIDR into the normal form: a
// single address is a /32 or /128, IPv4-mapped IPv6 is unmapped, host
// bits are masked off, and zones are refused.
func ParsePrefix(s string) (netip.Prefix, error) {
	p, err := ParseUnmasked(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return p.Masked(), nil
}

// IsRange reports whether p covers more than one address.
func IsRange(p netip.Prefix) bool { return p.Bits() < p.Addr().BitLen() }
