package sip

import (
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/netns"
)

// Addresses of the SIP namespaces (documentation ranges: attackers stay
// bannable; this machine's own 192.0.2.2 is never one of them).
const (
	proxyAddr = "203.0.113.1"
	attacker1 = "203.0.113.10" // listed by APIBAN (the simulator)
	attacker2 = "203.0.113.11" // banned by cscli: CrowdSec's own decision
	cleanAddr = "203.0.113.12" // never listed
)

// sipNet is Kamailio's namespace, joined to an attacker namespace (the
// SIP side) and to this host (where the mirror listens) by veth pairs.
type sipNet struct {
	kam, atk *netns.NS
	hostIP   string // the mirror's side of the host link
}

func newSIPNet(t *testing.T) *sipNet {
	t.Helper()
	n := &sipNet{kam: netns.New(t, "sipkam"), atk: netns.New(t, "sipatk")}
	netns.Link(t, n.atk, "atk0", n.kam, "kam0")
	n.kam.Cmd(t, "ip", "addr", "add", proxyAddr+"/24", "dev", "kam0")
	for _, a := range []string{attacker1, attacker2, cleanAddr} {
		n.atk.Cmd(t, "ip", "addr", "add", a+"/24", "dev", "atk0")
	}
	// The host link: a /30 of 10.213.0.0/16 picked at random, so that
	// parallel runs do not collide; deleting the namespace deletes it.
	b := make([]byte, 1)
	_, _ = rand.Read(b)
	net := fmt.Sprintf("10.213.%d.", b[0])
	n.hostIP = net + "1"
	hostIf := "sipm-" + n.kam.Name[len(n.kam.Name)-6:]
	netns.Cmd(t, "ip", "link", "add", hostIf, "type", "veth", "peer", "name", "up0", "netns", n.kam.Name)
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", hostIf).Run() })
	netns.Cmd(t, "ip", "addr", "add", n.hostIP+"/30", "dev", hostIf)
	netns.Cmd(t, "ip", "link", "set", hostIf, "up")
	n.kam.Cmd(t, "ip", "addr", "add", net+"2/30", "dev", "up0")
	n.kam.Cmd(t, "ip", "link", "set", "up0", "up")
	return n
}

// kamailio runs Kamailio in its namespace with the recipe's config and
// returns its log.
type kamailio struct {
	mu   sync.Mutex
	path string
	cmd  *exec.Cmd
}

func startKamailio(t *testing.T, n *sipNet, mirrorURL, key string) *kamailio {
	t.Helper()
	tmpl, err := os.ReadFile("testdata/kamailio.cfg")
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.NewReplacer("{{LISTEN}}", proxyAddr, "{{MIRROR}}", mirrorURL, "{{KEY}}", key).Replace(string(tmpl))
	dir := t.TempDir()
	cfgPath := writeFile(t, filepath.Join(dir, "kamailio.cfg"), cfg)
	k := &kamailio{path: filepath.Join(dir, "kamailio.log")}
	log, err := os.Create(k.path)
	if err != nil {
		t.Fatal(err)
	}
	k.cmd = exec.Command("ip", "netns", "exec", n.kam.Name, "kamailio", "-f", cfgPath, "-DD", "-E", "-Y", dir, "-P", filepath.Join(dir, "kamailio.pid"))
	k.cmd.Stdout, k.cmd.Stderr = log, log
	k.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := k.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-k.cmd.Process.Pid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = k.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-k.cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		log.Close()
		if t.Failed() {
			t.Logf("kamailio log (tail):\n%s", tail(k.log(), 60))
		}
	})
	return k
}

func (k *kamailio) log() string {
	b, _ := os.ReadFile(k.path)
	return string(b)
}

func tail(s string, n int) string {
	l := lines(s)
	return strings.Join(l[max(0, len(l)-n):], "\n")
}

// options sends one OPTIONS from src with sipsak and says whether a 200
// came back. sipsak retransmits for a few seconds before giving up.
func options(t *testing.T, n *sipNet, src string) bool {
	t.Helper()
	out, err := n.atk.Try("timeout", "20", "sipsak", "-vv", "-s", "sip:probe@"+proxyAddr, "-H", src, "-k", src)
	answered := err == nil && strings.Contains(out, "SIP/2.0 200 OK")
	if !answered && (strings.Contains(out, "failure") || strings.Contains(out, "refused")) {
		t.Fatalf("sipsak from %s could not send (%v): %s", src, err, out)
	}
	return answered
}

// The whole loop: APIBAN's listing and CrowdSec's own decision reach a
// stock Kamailio running APIBAN's recipe through the mirror, and
// Kamailio, not the kernel, ignores the listed sources.
func TestKamailioRecipeReadsTheMirror(t *testing.T) {
	netns.Require(t, "kamailio", "sipsak", "ipset", "nft")
	n := newSIPNet(t)
	e := newEnv(t, freePort(t, n.hostIP))
	d := e.start()
	k := startKamailio(t, n, "http://"+e.listen, mirrorKey)

	// Kamailio polls the mirror (end of list: nothing listed yet) and
	// answers everyone.
	e.waitFor("kamailio to poll the mirror", func() bool {
		return strings.Contains(k.log(), `APIBAN: Non 200 response. {"ipaddress":["no new bans"],"ID":"none"}`)
	})
	for _, src := range []string{attacker1, attacker2, cleanAddr} {
		if !options(t, n, src) {
			t.Fatalf("before any listing, OPTIONS from %s got no 200", src)
		}
	}

	// APIBAN lists attacker1: the bridge pushes it to LAPI, the mirror
	// serves it, Kamailio's timer loads it.
	e.sim.Add(attacker1)
	d.Signal(syscall.SIGUSR1)
	e.waitFor("kamailio to load "+attacker1, func() bool { return strings.Contains(k.log(), "== "+attacker1) })
	assertIgnored(t, n, k, attacker1)

	// CrowdSec's own decision (cscli) reaches Kamailio the same way.
	e.lapi.Cscli(t, "decisions", "add", "-i", attacker2, "-d", "1h", "-R", "sip test")
	e.waitFor("kamailio to load "+attacker2, func() bool { return strings.Contains(k.log(), "== "+attacker2) })
	assertIgnored(t, n, k, attacker2)

	if !options(t, n, cleanAddr) {
		t.Fatalf("OPTIONS from the clean %s got no 200", cleanAddr)
	}
	if out := netns.Cmd(t, "nft", "list", "ruleset"); strings.Contains(out, "apiban_bridge") {
		t.Fatalf("the embedded bouncer's table exists although it is off:\n%s", out)
	}
	assertIPSetList(t, e, n)
	out := d.Stop()
	if !strings.Contains(out, "mirror: serving APIBAN's API") || !strings.Contains(out, mirrorClient) {
		t.Fatalf("the daemon never said it serves the mirror for %s", mirrorClient)
	}
}

// assertIgnored: an OPTIONS from src gets no answer and Kamailio's log
// says its REQINIT check dropped it (a firewall drop would look the same
// from outside).
func assertIgnored(t *testing.T, n *sipNet, k *kamailio, src string) {
	t.Helper()
	if options(t, n, src) {
		t.Fatalf("OPTIONS from the listed %s still got a 200", src)
	}
	if !strings.Contains(k.log(), "blocked IP: "+src+" OPTIONS") {
		t.Fatalf("kamailio's log does not show its REQINIT check dropping %s", src)
	}
}

// /ipset/KEY/list loads with `ipset restore` and holds exactly LAPI's
// active bans (both origins here).
func assertIPSetList(t *testing.T, e *env, n *sipNet) {
	t.Helper()
	code, body := e.get("/ipset/" + mirrorKey + "/list")
	if code != 200 {
		t.Fatalf("ipset list: %d %s", code, body)
	}
	want := e.lapiSet("apiban", "cscli")
	var script strings.Builder
	script.WriteString("create mirror-test hash:net family inet\n")
	for _, l := range lines(body) {
		fmt.Fprintf(&script, "add mirror-test %s\n", l)
	}
	cmd := exec.Command("ip", "netns", "exec", n.kam.Name, "ipset", "restore")
	cmd.Stdin = strings.NewReader(script.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ipset restore: %v\n%s", err, out)
	}
	out := n.kam.Cmd(t, "ipset", "list", "mirror-test")
	_, members, _ := strings.Cut(out, "Members:\n")
	got := lines(members)
	slices.Sort(got)
	var wantList []string
	for v := range want {
		wantList = append(wantList, v)
	}
	slices.Sort(wantList)
	if !slices.Equal(got, wantList) {
		t.Fatalf("ipset holds %v, LAPI %v", got, wantList)
	}
	if len(got) != 2 {
		t.Fatalf("want the two attackers, got %v", got)
	}
}
