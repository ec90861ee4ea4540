package apibansim

import (
	"math/rand/v2"
	"net/netip"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/source/neverban"
)

// never is the bridge's never-ban table: an address in it would be
// refused, not pushed, and throw counts off.
var never = neverban.New()

// PublicIPv4s returns n distinct IPv4 addresses that look public, the
// same ones for the same seed.
func PublicIPv4s(n int, seed uint64) []string {
	rng := rand.New(rand.NewPCG(seed, 0x61706962616e)) // "apiban"
	seen := make(map[netip.Addr]bool, n)
	out := make([]string, 0, n)
	for len(out) < n {
		a := netip.AddrFrom4([4]byte{byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32())})
		if seen[a] || !IsPublic(a) {
			continue
		}
		seen[a] = true
		out = append(out, a.String())
	}
	return out
}

// IsPublic reports whether a could be a public source address: one that
// is in none of the special-purpose ranges the bridge never bans.
func IsPublic(a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	a = a.Unmap()
	_, _, hit := never.Match(netip.PrefixFrom(a, a.BitLen()))
	return !hit
}
