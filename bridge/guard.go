package bridge

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/source/neverban"
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
	return neverban.TooWide(p, o.MinPrefixV4, o.MinPrefixV6)
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
