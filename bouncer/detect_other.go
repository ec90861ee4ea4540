//go:build !linux

package bouncer

import "context"

// DetectFirewallBouncer finds nothing where the embedded bouncer does not
// run: crowdsec-firewall-bouncer's nftables and ipset objects are Linux's.
func DetectFirewallBouncer(context.Context) []string { return nil }
