package apiban

import (
	"errors"
	"net/netip"
	"strings"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/source"
)

// ParseEntry turns one list entry into a prefix in the normal form
// (source.ParsePrefix), surrounding whitespace ignored. It also refuses a
// /0, which would block a whole address family: one bad entry must not
// cut a host off the internet.
func ParseEntry(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return netip.Prefix{}, errors.New("empty entry")
	}
	p, err := source.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	if p.Bits() == 0 {
		return netip.Prefix{}, errors.New("prefix /0 covers every address")
	}
	return p, nil
}
