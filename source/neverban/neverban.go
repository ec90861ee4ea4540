// Package neverban is the one table of addresses that are never banned,
// by the bridge or the embedded bouncer: IANA's special-purpose ranges
// that are never a real attack source, and this host's own, its LAPI's,
// gateways' and resolvers' addresses (docs/bouncer.md, "Never banned").
package neverban

import (
	"net/netip"
)

// Reasons, used as log fields and metric labels.
const (
	ReasonSpecial   = "special"   // IANA special-purpose address space
	ReasonSelf      = "self"      // an address of this host
	ReasonLAPI      = "lapi"      // an address of the LAPI host
	ReasonGateway   = "gateway"   // a gateway of this host's routes
	ReasonResolver  = "resolver"  // a nameserver of /etc/resolv.conf
	ReasonAllowlist = "allowlist" // the operator's allowlist.cidrs
	ReasonTooWide   = "too-wide"  // wider than the configured minimum prefix
)

// MinPrefix is the bits of the widest range of each family that may be
// banned: a wider one (fewer bits) never is (ReasonTooWide). 0 is no
// limit. The feed has its own (decisions.min_prefix_v4/v6); the embedded
// bouncer and the mirror share bouncer.min_prefix_v4/v6.
func MinPrefix(p netip.Prefix, v4, v6 int) int {
	if p.Addr().Is6() {
		return v6
	}
	return v4
}

// TooWide reports whether p is wider than MinPrefix allows.
func TooWide(p netip.Prefix, v4, v6 int) bool { return p.Bits() < MinPrefix(p, v4, v6) }

// Entry is one never-banned prefix and why.
type Entry struct {
	Prefix netip.Prefix
	Reason string
	// Note says what the range is, for logs (the registry's name).
	Note string
}

// special is IANA's IPv4 and IPv6 special-purpose registries, less the
// documentation ranges (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24,
// 2001:db8::/32, 3fff::/20), which labs and tests use as attackers, and
// less the ranges IANA marks globally reachable (AS112, AMT, Teredo,
// ORCHIDv2...), which real hosts may send from. The narrower entries come
// first so that a match names them. 6to4 (2002::/16) is judged by the IPv4
// address it embeds, in Match.
var special = []Entry{
	e("0.0.0.0/8", "this network"),
	e("10.0.0.0/8", "private-use"),
	e("100.64.0.0/10", "shared address space (carrier-grade NAT)"),
	e("127.0.0.0/8", "loopback"),
	e("169.254.0.0/16", "link-local"),
	e("172.16.0.0/12", "private-use"),
	e("192.0.0.0/24", "IETF protocol assignments"),
	e("192.88.99.0/24", "deprecated 6to4 relay anycast"),
	e("192.168.0.0/16", "private-use"),
	e("198.18.0.0/15", "benchmarking"),
	e("224.0.0.0/4", "multicast"),
	e("255.255.255.255/32", "limited broadcast"),
	e("240.0.0.0/4", "reserved"),
	e("::/128", "unspecified"),
	e("::1/128", "loopback"),
	e("::/96", "deprecated IPv4-compatible"),
	e("::ffff:0:0/96", "IPv4-mapped"),
	e("64:ff9b::/96", "NAT64 well-known prefix (the whole IPv4 internet on a NAT64 host)"),
	e("64:ff9b:1::/48", "NAT64 local use"),
	e("100::/64", "discard-only"),
	e("2001:1::1/128", "port control protocol anycast"),
	e("2001:1::2/128", "TURN anycast"),
	e("2001:1::3/128", "DNS-SD service registration anycast"),
	e("2001:2::/48", "benchmarking"),
	e("2001:10::/28", "deprecated ORCHID"),
	e("5f00::/16", "segment routing (SRv6) SIDs"),
	e("fc00::/7", "unique-local"),
	e("fe80::/10", "link-local"),
	e("fec0::/10", "deprecated site-local"),
	e("ff00::/8", "multicast"),
}

// sixToFour is 2002::/16: a 6to4 address carries an IPv4 address in its
// bits 16 to 47.
var sixToFour = netip.MustParsePrefix("2002::/16")

func e(p, note string) Entry {
	return Entry{Prefix: netip.MustParsePrefix(p), Reason: ReasonSpecial, Note: note}
}

// SpecialEntries returns a copy of the special-purpose table.
func SpecialEntries() []Entry { return append([]Entry(nil), special...) }

// Set is an immutable never-ban list: the special-purpose table plus the
// entries it was built with. The zero value holds the table only.
type Set struct {
	extra []Entry
}

// New returns the special-purpose table plus extra.
func New(extra ...Entry) *Set {
	return &Set{extra: append([]Entry(nil), extra...)}
}

// With returns a new set that also holds ps for reason.
func (s *Set) With(reason string, ps ...netip.Prefix) *Set {
	out := &Set{extra: append([]Entry(nil), s.entries()...)}
	for _, p := range ps {
		out.extra = append(out.extra, Entry{Prefix: p, Reason: reason})
	}
	return out
}

func (s *Set) entries() []Entry {
	if s == nil {
		return nil
	}
	return s.extra
}

// Match reports why p must never be banned, and the entry it overlaps: a
// range that overlaps a never-banned address would ban it too. An
// IPv4-mapped p is judged as the IPv4 prefix it maps, a 6to4 one by the
// IPv4 prefix it embeds (detail is then that entry in 6to4 form).
func (s *Set) Match(p netip.Prefix) (reason string, detail netip.Prefix, ok bool) {
	en, ok := s.MatchEntry(p)
	return en.Reason, en.Prefix, ok
}

// MatchEntry is Match returning the whole entry (its note), for logs.
func (s *Set) MatchEntry(p netip.Prefix) (Entry, bool) {
	if !p.IsValid() {
		return Entry{}, false
	}
	p = unmap(p.Masked())
	if en, hit := matchSpecial(p); hit {
		return en, true
	}
	for _, en := range s.entries() {
		if en.Prefix.Overlaps(p) {
			return en, true
		}
	}
	return Entry{}, false
}

func matchSpecial(p netip.Prefix) (Entry, bool) {
	for _, en := range special {
		if en.Prefix.Overlaps(p) {
			return en, true
		}
	}
	if v4, ok := embedded6to4(p); ok {
		for _, en := range special {
			if en.Prefix.Addr().Is4() && en.Prefix.Overlaps(v4) {
				return Entry{Prefix: to6to4(en.Prefix), Reason: ReasonSpecial, Note: "6to4 of " + en.Note + " " + en.Prefix.String()}, true
			}
		}
	}
	return Entry{}, false
}

// unmap turns an IPv4-mapped prefix (::ffff:a.b.c.d/96+n) into a.b.c.d/n.
func unmap(p netip.Prefix) netip.Prefix {
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p
}

// embedded6to4 is the IPv4 prefix a 6to4 prefix (2002:AABB:CCDD::/n,
// n >= 16) covers. 2002::/16 itself covers all of IPv4.
func embedded6to4(p netip.Prefix) (netip.Prefix, bool) {
	if !p.Addr().Is6() || p.Bits() < 16 || !sixToFour.Contains(p.Addr()) {
		return netip.Prefix{}, false
	}
	a := p.Addr().As16()
	v4 := netip.AddrFrom4([4]byte{a[2], a[3], a[4], a[5]})
	return netip.PrefixFrom(v4, min(p.Bits()-16, 32)).Masked(), true
}

// to6to4 is the 6to4 form of an IPv4 prefix.
func to6to4(v4 netip.Prefix) netip.Prefix {
	b := v4.Addr().As4()
	return netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x02, b[0], b[1], b[2], b[3]}), 16+v4.Bits())
}
