package netns

import (
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/apibansim"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/bridgetest"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/lapitest"
)

// TestBinaryInNamespace runs the real binary, bridge and bouncer, inside
// the "pbx" namespace: APIBAN lists an address, the bridge pushes it to
// LAPI, the bouncer (origins [apiban]) drops its traffic; a clean address
// passes; SIGTERM removes the table.
func TestBinaryInNamespace(t *testing.T) {
	Require(t, "nft")
	bin, err := bridgetest.Build(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	l := lapitest.Start(t)
	const bouncerKey, password, apibanKey = "bin-bouncer-key-77aa", "bin-machine-pw-42", "bin-apiban-key-13"
	l.Cscli(t, "bouncers", "add", "apiban-bridge-fw", "-k", bouncerKey)
	l.AddMachine(t, "crowdsec-apiban-bridge", password)

	pbx, atk := New(t, "pbx"), New(t, "atk")
	Link(t, pbx, "vpbx", atk, "vatk")
	pbx.Cmd(t, "ip", "addr", "add", pbxAddr+"/24", "dev", "vpbx")
	pbx.Cmd(t, "ip", "route", "add", "192.0.2.0/24", "dev", "vpbx")
	atk.Cmd(t, "ip", "addr", "add", clean+"/24", "dev", "vatk")
	atk.Cmd(t, "ip", "addr", "add", banned+"/32", "dev", "vatk")
	atk.Cmd(t, "ip", "addr", "add", "192.0.2.11/32", "dev", "vatk")
	probe := newProbe(t, pbx, atk, banned, "192.0.2.11", clean)
	// A decision of another origin: with origins [apiban] it is not ours.
	l.Cscli(t, "decisions", "add", "--ip", "192.0.2.11", "--duration", "1h")
	// crowdsec-firewall-bouncer's table: detected and logged, not touched.
	pbx.Cmd(t, "nft", "add table ip crowdsec")

	simLn := pbx.ListenTCP(t, "127.0.0.1:0")
	sim := apibansim.New(apibansim.Options{Key: apibanKey, MaxRequests: apibansim.Unlimited, Listener: simLn})
	t.Cleanup(sim.Close)
	sim.Add(banned)

	u, err := url.Parse(l.URL)
	if err != nil {
		t.Fatal(err)
	}
	lapiURL := "http://" + pbx.Forward(t, "127.0.0.1:0", u.Host) + "/"
	dir := t.TempDir()
	cfgPath := bridgetest.Config{
		APIBAN: bridgetest.APIBAN{APIKey: apibanKey, URL: "http://" + simLn.Addr().String(),
			MaxRequests: new(0), PollInterval: 10 * time.Second},
		CrowdSec:   bridgetest.CrowdSec{LAPIURL: lapiURL, Password: password},
		StateFile:  filepath.Join(dir, "state.json"),
		Prometheus: bridgetest.Prometheus{Enabled: new(false)},
		Bouncer: bridgetest.Bouncer{Enabled: new(true), APIKey: bouncerKey, UpdateFrequency: time.Second,
			Origins: []string{"apiban"}},
	}.Write(t, dir)

	d := bridgetest.StartDaemon(t, "ip", nil, []string{bouncerKey, password, apibanKey}, "netns", "exec", pbx.Name, bin, "-c", cfgPath)

	bridgetest.Eventually(t, 60*time.Second, "the APIBAN address in the kernel set", func() bool {
		return has(ourElements(t, "nftables", pbx), banned+"/32")
	})
	probe.want(banned, false, "listed by APIBAN")
	probe.want("192.0.2.11", true, "banned by another origin, not enforced with origins [apiban]")
	probe.want(clean, true, "clean IP")

	log := d.Stop()
	if got := ourObjects(t, "nftables", pbx); got != "" {
		t.Errorf("objects after SIGTERM: %s", got)
	}
	if pbx.NftTable("ip", "crowdsec") == "" {
		t.Error("crowdsec-firewall-bouncer's table was removed")
	}
	for _, want := range []string{"crowdsec-firewall-bouncer is present (nftables table crowdsec", "origins: [apiban]", "nftables objects removed"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q", want)
		}
	}
}
