// Package allowlist decides which feed entries must never become decisions:
// addresses that are not public, the operator's configured CIDRs and
// CrowdSec's own allowlists. A feed prefix is refused when it overlaps any
// allowlisted prefix, since banning it would ban the allowlisted address too.
package allowlist

import (
	"net/netip"
)

// Reasons reported by Match, used as log fields and metric labels.
const (
	ReasonNotPublic = "not-public"
	ReasonConfig    = "config"
	ReasonLAPI      = "lapi"
)

// notPublic lists what Go's netip calls private, loopback, link-local,
// multicast or unspecified, plus carrier-grade NAT (100.64.0.0/10), as
// prefixes so that a feed range overlapping them is caught too.
var notPublic = mustPrefixes(
	"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7", // private
	"127.0.0.0/8", "::1/128", // loopback
	"169.254.0.0/16", "fe80::/10", // link-local unicast
	"224.0.0.0/4", "ff00::/8", // multicast
	"0.0.0.0/32", "::/128", // unspecified
	"100.64.0.0/10", // carrier-grade NAT
)

// Entry is one allowlisted prefix and where it came from (for logs).
type Entry struct {
	Prefix netip.Prefix
	Source string
}

// Set is an immutable allowlist. The zero value allows everything public.
type Set struct {
	config []netip.Prefix
	lapi   []Entry
}

// New builds a set from configured prefixes and LAPI allowlist entries.
func New(config []netip.Prefix, lapi []Entry) *Set {
	return &Set{config: config, lapi: lapi}
}

// Match reports why p must not be banned, or ok=false when it may be.
// detail names the allowlist entry that matched.
func (s *Set) Match(p netip.Prefix) (reason, detail string, ok bool) {
	if a, hit := overlapping(notPublic, p); hit {
		return ReasonNotPublic, a.String(), true
	}
	if a, hit := overlapping(s.config, p); hit {
		return ReasonConfig, a.String(), true
	}
	for _, e := range s.lapi {
		if e.Prefix.Overlaps(p) {
			return ReasonLAPI, e.Source + " " + e.Prefix.String(), true
		}
	}
	return "", "", false
}

func overlapping(list []netip.Prefix, p netip.Prefix) (netip.Prefix, bool) {
	for _, a := range list {
		if a.Overlaps(p) {
			return a, true
		}
	}
	return netip.Prefix{}, false
}

func mustPrefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}
