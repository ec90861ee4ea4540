package netns

import "github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/config"

// Our objects' names: the tests run the bouncer with the defaults, so
// they are read from config, which owns them.
var (
	defaults         = config.Default().Bouncer
	ourTable         = defaults.Table         // the nftables table (inet)
	ourChain         = defaults.Chain         // nftables chains: ourChain+"-input", "-forward"
	ourPrefix        = defaults.SetPrefix     // sets: nftables PREFIX-ORIGIN-KIND, ipset PREFIX-N-vX and PREFIX-origins
	ourIptablesChain = defaults.IptablesChain // the iptables chain (ipset mode)
	ourPriority      = defaults.Priority
)
