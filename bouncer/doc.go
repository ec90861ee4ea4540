// Package bouncer will hold the optional embedded firewall bouncer (nftables
// sets, ipset as fallback). It is not implemented yet: the bridge today only
// writes decisions to LAPI, where any CrowdSec bouncer enforces them.
package bouncer
