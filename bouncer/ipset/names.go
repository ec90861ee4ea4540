package ipset

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Set names: PREFIX-N-v4 and PREFIX-N-v6 for slot N, the registry
// PREFIX-origins, and PREFIX-swap, the one temporary set of a full load
// (why slots: docs/bouncer.md, "ipset").
const (
	// maxName is IPSET_MAXNAMELEN without its NUL.
	maxName = 31
	// MaxSlots bounds the origins one run can hold: slot numbers have at
	// most four digits.
	MaxSlots = 10000
	// longestSuffix is the longest thing appended to the prefix: the last
	// slot's IPv6 set ("-origins" and "-swap" are not longer).
	longestSuffix = "-9999-v6"
	// MaxSetPrefix is the longest prefix whose every name fits.
	MaxSetPrefix = maxName - len(longestSuffix)
	swapSuffix   = "-swap"
	regSuffix    = "-origins"
)

// foreignPrefixes start the stock crowdsec-firewall-bouncer's sets
// (crowdsec6-blacklists is 0.0.25's IPv6 set).
var foreignPrefixes = []string{"crowdsec-blacklists", "crowdsec6-blacklists"}

func setName(prefix string, slot int, f family) string {
	return prefix + "-" + strconv.Itoa(slot) + "-" + f.suffix
}

// ElementSet reports whether name is one of the element sets a backend
// with this prefix creates (PREFIX-N-v4, PREFIX-N-v6), and which.
func ElementSet(prefix, name string) (slot int, v6 bool, ok bool) {
	rest, ok := strings.CutPrefix(name, prefix+"-")
	if !ok {
		return 0, false, false
	}
	num, fam, ok := strings.Cut(rest, "-")
	if !ok || num == "" || strings.Trim(num, "0123456789") != "" || (fam != "v4" && fam != "v6") {
		return 0, false, false
	}
	slot, err := strconv.Atoi(num)
	if err != nil || strconv.Itoa(slot) != num {
		slot = -1 // ours (a leftover to destroy), but never a current slot's name
	}
	return slot, fam == "v6", true
}

// OwnedSet reports whether name has the shape of a set a backend with
// this prefix creates (or created in earlier releases): an element set,
// the swap set or the registry. Whether such a set is ours is the
// registry's to say (owner.go): only recorded sets are ever destroyed.
func OwnedSet(prefix, name string) bool {
	if _, _, ok := ElementSet(prefix, name); ok {
		return true
	}
	return name == prefix+swapSuffix || name == prefix+regSuffix || slices.Contains(oldSuffixes, strings.TrimPrefix(name, prefix))
}

// oldSuffixes name the sets of the bridge's first release (one pair for
// every origin, and their full-load twins): an upgrade removes them.
var oldSuffixes = []string{"-v4", "-v6", "-v4-new", "-v6-new"}

func checkPrefix(prefix string) error {
	switch {
	case prefix == "":
		return fmt.Errorf("ipset: a set prefix is required")
	case len(prefix) > MaxSetPrefix:
		return fmt.Errorf("ipset: set prefix %q is longer than %d characters: %s%s would not fit in an ipset name", prefix, MaxSetPrefix, prefix, longestSuffix)
	case slices.ContainsFunc(foreignPrefixes, func(f string) bool { return strings.HasPrefix(strings.ToLower(prefix), f) }):
		return fmt.Errorf("ipset: set prefix %q starts like crowdsec-firewall-bouncer's sets (%s)", prefix, strings.Join(foreignPrefixes, ", "))
	case strings.ContainsFunc(prefix, func(r rune) bool { return r <= ' ' || r > '~' }):
		return fmt.Errorf("ipset: set prefix %q holds a space or a non-ASCII character", prefix)
	}
	return nil
}
