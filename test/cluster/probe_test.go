package cluster

import (
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/lapitest"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/netns"
)

// probe sends SIP-port datagrams from attacker addresses (held by the atk
// namespace on its loopback) to every pbx and reports which arrive.
type probe struct {
	t   *testing.T
	atk *netns.NS
	pbx map[string]*netns.UDPListener // by address
	seq int
}

func newProbe(t *testing.T, atk *netns.NS) *probe {
	return &probe{t: t, atk: atk, pbx: map[string]*netns.UDPListener{}}
}

// listen opens UDP/5060 on pbx (its own address) and records what arrives.
func (p *probe) listen(pbx *netns.NS, addr string) {
	p.pbx[addr] = pbx.ListenUDP(p.t, net.JoinHostPort(addr, "5060"), false)
}

// attacker gives the atk namespace one more source address.
func (p *probe) attacker(addr string) {
	p.atk.Cmd(p.t, "ip", "addr", "add", addr+"/32", "dev", "lo")
}

// arrives sends three datagrams from src to dst:5060 and reports whether
// any arrived within a second.
func (p *probe) arrives(src, dst string) bool {
	p.t.Helper()
	p.seq++
	var msgs []string
	err := lapitest.InNetNS(p.atk.Name, func() error {
		c, err := net.DialUDP("udp4", &net.UDPAddr{IP: net.ParseIP(src)}, &net.UDPAddr{IP: net.ParseIP(dst), Port: 5060})
		if err != nil {
			return err
		}
		defer c.Close()
		for i := range 3 {
			msg := fmt.Sprintf("%s>%s#%d.%d", src, dst, p.seq, i)
			msgs = append(msgs, msg)
			if _, err := c.Write([]byte(msg)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		p.t.Fatalf("send %s -> %s: %v", src, dst, err)
	}
	return p.pbx[dst].Arrived(msgs...)
}

// inSet reports whether pbx's nftables v4 set of origin holds addr.
func inSet(pbx *netns.NS, origin, addr string) bool {
	out, err := pbx.Try("nft", "list", "set", "inet", "apiban_bridge", "apiban-bridge-"+origin+"-v4")
	return err == nil && strings.Contains(out, addr+" ") || err == nil && strings.Contains(out, addr+",") || err == nil && strings.Contains(out, addr+"}")
}
