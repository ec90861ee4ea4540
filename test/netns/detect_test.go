package netns

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bouncer"
)

func TestDetectFirewallBouncer(t *testing.T) {
	Require(t, "nft", "ipset", "iptables")
	ns := New(t, "det")
	ctx := context.Background()
	unit := false
	probe := bouncer.Probe{NetNSFd: ns.Fd(), CommandPrefix: []string{"ip", "netns", "exec", ns.Name},
		ConfigPath: filepath.Join(t.TempDir(), "crowdsec-firewall-bouncer.yaml"),
		UnitActive: func(_ context.Context, name string) bool { return unit && name == "crowdsec-firewall-bouncer" }}

	// Our own objects are no sign of the stock bouncer.
	ns.Cmd(t, "nft", "add table inet "+ourTable)
	if got := probe.Detect(ctx); got != nil {
		t.Fatalf("detected on a clean namespace: %v", got)
	}
	steps := []struct {
		setup func()
		want  string
	}{
		{func() { ns.Cmd(t, "nft", "add table ip6 crowdsec6") }, "nftables table crowdsec6"},
		{func() { ns.Cmd(t, "ipset", "create", "crowdsec-blacklists-0", "hash:net", "timeout", "0") }, "ipset crowdsec-blacklists-0"},
		{func() { ns.Cmd(t, "iptables", "-w", "-N", "CROWDSEC_CHAIN") }, "iptables chain CROWDSEC_CHAIN"},
		// 0.0.25 (Debian bookworm): crowdsec6-blacklists, matched from INPUT.
		{func() {
			ns.Cmd(t, "ipset", "create", "crowdsec6-blacklists", "hash:net", "family", "inet6", "timeout", "300")
		}, "ipset crowdsec6-blacklists"},
		{func() {
			ns.Cmd(t, "ip6tables", "-w", "-I", "INPUT", "-m", "set", "--match-set", "crowdsec6-blacklists", "src", "-j", "DROP")
		}, "ip6tables INPUT rule matching crowdsec6-blacklists"},
		{func() { unit = true }, "active unit crowdsec-firewall-bouncer"},
	}
	for _, s := range steps {
		s.setup()
		got := probe.Detect(ctx)
		if len(got) != 2 || !strings.Contains(got[0], s.want) || !strings.Contains(got[1], "origins: [apiban]") {
			t.Errorf("after adding %s: %q", s.want, got)
		}
	}
}
