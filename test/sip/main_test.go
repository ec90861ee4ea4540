// Package sip tests the bridge's APIBAN-compatible mirror with real
// clients: Kamailio running APIBAN's published recipe in a network
// namespace, the bridge's own APIBAN client, and ipset. Real LAPI, the
// bridge daemon, the APIBAN simulator; the kernel firewall is never
// involved (the embedded bouncer is off).
package sip

import (
	"testing"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/bridgetest"
)

var bridgeBin string

func TestMain(m *testing.M) { bridgetest.Main(m, &bridgeBin) }
