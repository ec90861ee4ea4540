// Package allowlist decides which feed entries must never become decisions:
// the special-purpose ranges of source/neverban (never a real attack
// source), the operator's configured CIDRs and CrowdSec's own allowlists. A feed prefix is refused when it overlaps any
// allowlisted prefix, since banning it would ban the allowlisted address too.
package allowlist

import (
	"net/netip"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/source/neverban"
)

// Reasons reported by Match, used as log fields and metric labels.
const (
	ReasonNotPublic = "not-public"
	ReasonConfig    = "config"
	ReasonLAPI      = "lapi"
)

// notPublic is the never-ban table of special-purpose ranges, shared with
// the embedded bouncer (docs/bouncer.md, "Never banned").
var notPublic = neverban.New()

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
	if en, hit := notPublic.MatchEntry(p); hit {
		return ReasonNotPublic, en.Prefix.String() + " (" + en.Note + ")", true
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
