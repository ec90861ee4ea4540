package apibansim

import (
	"math/rand/v2"
	"net/netip"
)

// notPublic are ranges that netip's predicates do not flag but that
// never appear as an attacker's source address.
var notPublic = [...]netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"), // carrier-grade NAT
	netip.MustParsePrefix("240.0.0.0/4"),   // reserved, and broadcast
}

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

// IsPublic reports whether a could be a public source address.
func IsPublic(a netip.Addr) bool {
	if !a.IsGlobalUnicast() || a.IsPrivate() || a.IsLoopback() ||
		a.IsLinkLocalUnicast() || a.IsMulticast() || a.IsUnspecified() {
		return false
	}
	for _, p := range notPublic {
		if p.Contains(a) {
			return false
		}
	}
	return true
}
