package main

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestMedian(t *testing.T) {
	if got := median([]time.Duration{3, 1, 2}); got != 2 {
		t.Errorf("median of 3 = %v, want 2", got)
	}
	if got := median([]float64{4, 1, 2, 3}); got != 2.5 {
		t.Errorf("median of 4 = %v, want 2.5", got)
	}
	if got := median([]int64{}); got != 0 {
		t.Errorf("median of none = %v, want 0", got)
	}
}

func TestDropLines(t *testing.T) {
	out := `Chain APIBAN (1 references)
    pkts      bytes target     prot opt in     out     source               destination
       0        0 DROP       0    --  *      *       203.0.113.5          0.0.0.0/0
    1000    92000 DROP       0    --  *      *       198.51.100.7         0.0.0.0/0
       3      100 ACCEPT     0    --  *      *       0.0.0.0/0            0.0.0.0/0
`
	if got := dropLines(out); got != 1000 {
		t.Errorf("dropLines = %d, want 1000", got)
	}
}

func TestScripts(t *testing.T) {
	addrs := []netip.Addr{netip.MustParseAddr("198.51.100.7"), netip.MustParseAddr("203.0.113.5")}
	ipt := string(iptablesScript(addrs))
	if strings.Count(ipt, "-A APIBAN -s ") != 2 || !strings.HasSuffix(ipt, "COMMIT\n") || !strings.Contains(ipt, "-A INPUT -j APIBAN\n") {
		t.Errorf("iptables-restore input:\n%s", ipt)
	}
	nft := string(nftScript(addrs, false))
	if !strings.Contains(nft, "198.51.100.7 timeout 168h,\n") || !strings.Contains(nft, "203.0.113.5 timeout 168h\n") ||
		strings.Count(nft, "counter drop\n") != 4 {
		t.Errorf("nft -f input:\n%s", nft)
	}
	if !strings.Contains(string(nftScript(addrs, true)), "set s4 {\n\t\ttype ipv4_addr\n\t\tflags interval, timeout\n") {
		t.Error("interval variant lacks flags interval on s4")
	}
	ips := string(ipsetScript(addrs))
	if !strings.HasPrefix(ips, "create restored hash:net family inet timeout 0") || !strings.Contains(ips, "add restored 203.0.113.5 timeout 604800\n") {
		t.Errorf("ipset restore input:\n%s", ips)
	}
}

func TestAddressesAvoidTheLink(t *testing.T) {
	addrs := addresses(5000)
	link := netip.MustParsePrefix(linkNet)
	seen := map[netip.Addr]bool{}
	for _, a := range addrs {
		if link.Contains(a) || seen[a] {
			t.Fatalf("address %s on the link or repeated", a)
		}
		seen[a] = true
	}
	if len(addrs) != 5000 {
		t.Errorf("%d addresses, want 5000", len(addrs))
	}
}

func TestLabel(t *testing.T) {
	o := options{n: 100_000, rules: 5_000}
	if got := label(pNft, o); got != "bouncer nftables table, 100,000-element set" {
		t.Errorf("label = %q", got)
	}
	if got := label(pIpt, o); got != "5,000 iptables rules, one per IP (iptables-nft)" {
		t.Errorf("label = %q", got)
	}
}
