package cluster

import (
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/apibansim"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/lapitest"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/netns"
)

// Intervals kept short for the test: poll_interval's minimum and a 1 s
// stream. A listing reaches every pbx within pollInterval +
// updateFrequency + slack (docs/scale-out.md has the figures measured).
const (
	pollInterval    = 10 * time.Second
	updateFrequency = time.Second
	slack           = 2 * time.Second
	pbxCount        = 5
	machinePassword = "cluster-machine-password"
	lapiAAddr       = "10.77.0.11"
	lapiBAddr       = "10.77.0.12"
)

// site is the whole topology of docs/scale-out.md.
type site struct {
	t            *testing.T
	hub          *hub
	db           *pg
	lapiA, lapiB *lapitest.LAPI
	sim          *apibansim.Sim
	pbx          []*netns.NS
	pbxAddr      []string
	pbxKeys      []string
	probe        *probe
	creds        string // the bridge machine's credentials file (on lapi-a)
}

func newSite(t *testing.T) *site {
	netns.Require(t, "nft")
	s := &site{t: t, hub: newHub(t)}
	s.db = startPG(t, s.hub.ns.Name, hubAddr, 5432)
	nsA := s.hub.attach(t, "lapi-a", lapiAAddr)
	nsB := s.hub.attach(t, "lapi-b", lapiBAddr)
	s.lapiA = lapitest.StartWith(t, t.TempDir(), lapitest.With{DBConfig: s.db.dbConfig(), Listen: lapiAAddr + ":8080", NetNS: nsA.Name, Machine: "cscli-a"})
	s.lapiB = lapitest.StartWith(t, t.TempDir(), lapitest.With{DBConfig: s.db.dbConfig(), Listen: lapiBAddr + ":8080", NetNS: nsB.Name, Machine: "cscli-b"})
	s.creds = s.lapiA.AddMachine(t, "apiban-bridge", machinePassword)

	var err error
	var sim *apibansim.Sim
	err = lapitest.InNetNS(s.hub.ns.Name, func() error {
		ln, err := net.Listen("tcp", hubAddr+":0")
		if err != nil {
			return err
		}
		sim = apibansim.New(apibansim.Options{Listener: ln, MaxRequests: apibansim.Unlimited})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	s.sim = sim

	atk := s.hub.attach(t, "atk", "10.77.0.99")
	s.probe = newProbe(t, atk)
	for i := range pbxCount {
		addr := fmt.Sprintf("10.77.0.%d", 31+i)
		ns := s.hub.attach(t, fmt.Sprintf("pbx%d", i+1), addr)
		s.pbx, s.pbxAddr = append(s.pbx, ns), append(s.pbxAddr, addr)
		s.probe.listen(ns, addr)
	}
	s.addBouncers()
	return s
}

// addBouncers registers one bouncer key per pbx on lapi-b (again, after a
// new database).
func (s *site) addBouncers() {
	if s.pbxKeys == nil {
		for i := range pbxCount {
			s.pbxKeys = append(s.pbxKeys, fmt.Sprintf("cluster-pbx%d-bouncer-key-0123456789", i+1))
		}
	}
	for i, key := range s.pbxKeys {
		if _, err := s.lapiB.CscliErr("bouncers", "add", fmt.Sprintf("pbx%d", i+1), "-k", key); err != nil {
			s.t.Fatalf("cscli bouncers add: %v\nPostgreSQL sessions:\n%s", err,
				s.db.sql(s.t, "postgres", "select pid, state, wait_event_type, wait_event, left(query, 120) from pg_stat_activity"))
		}
	}
}

// bridgeConfig is the bridge's: APIBAN simulator in, lapi-a out.
func (s *site) bridgeConfig(dir string) string {
	return writeFile(s.t, dir, "bridge.yaml", fmt.Sprintf(`apiban:
  api_key: %s
  url: %s
  poll_interval: %s
  max_requests: 0
crowdsec:
  lapi_url: http://%s:8080/
  login: apiban-bridge
  password: %s
decisions:
  max_new_per_sync: 0
state_file: %s/state/state.json
log_level: debug
prometheus:
  enabled: false
`, s.sim.Key(), s.sim.URL(), pollInterval, lapiAAddr, machinePassword, dir))
}

// pbxConfig is a PBX's: bouncer-only, pulling from lapi-b with its own key.
func (s *site) pbxConfig(dir string, i int) string {
	return writeFile(s.t, dir, fmt.Sprintf("pbx%d.yaml", i+1), fmt.Sprintf(`apiban:
  enabled: false
crowdsec:
  lapi_url: http://%s:8080/
bouncer:
  enabled: true
  api_key: %s
  update_frequency: %s
  metrics_interval: 0s
prometheus:
  enabled: false
`, lapiBAddr, s.pbxKeys[i], updateFrequency))
}

// allDrop reports whether every pbx drops src (and holds it in the set of
// origin, which is what the wait polls: cheaper than packets).
func (s *site) allHold(origin, addr string) bool {
	for _, ns := range s.pbx {
		if !inSet(ns, origin, addr) {
			return false
		}
	}
	return true
}

func (s *site) noneHolds(origin, addr string) bool {
	for _, ns := range s.pbx {
		if inSet(ns, origin, addr) {
			return false
		}
	}
	return true
}

// assertDrop sends from src to every pbx: each must drop it (drop true)
// or let it through.
func (s *site) assertDrop(src string, drop bool) {
	s.t.Helper()
	for i, addr := range s.pbxAddr {
		if arrived := s.probe.arrives(src, addr); arrived == drop {
			s.t.Errorf("pbx%d: datagram from %s arrived=%v, want dropped=%v", i+1, src, arrived, drop)
		}
	}
}

// assertOnce checks that PostgreSQL holds each address of want exactly
// once among the active apiban decisions, and nothing else.
func (s *site) assertOnce(want []string) {
	s.t.Helper()
	rows := s.db.activeRows(s.t, "apiban")
	for _, a := range want {
		if rows[a] != 1 {
			s.t.Errorf("PostgreSQL holds %d active decisions for %s, want 1", rows[a], a)
		}
	}
	if len(rows) != len(want) {
		s.t.Errorf("PostgreSQL holds %d addresses of origin apiban, want %d", len(rows), len(want))
	}
}

// TestCluster: two LAPIs on one PostgreSQL, the bridge on one, five
// bouncer-only PBX hosts on the other; then the bridge moves, and LAPI
// loses its database. One site, in sequence: each step needs the last.
func TestCluster(t *testing.T) {
	s := newSite(t)
	listed := apibansim.PublicIPv4s(40, 14)
	s.sim.Add(listed...)

	bridgeNS := s.hub.attach(t, "bridge", "10.77.0.20")
	dir := t.TempDir()
	br := startProc(t, t, "bridge", bridgeNS, bin, s.bridgeConfig(dir))
	// The PBX start once the first push is in: LAPI v1.7.8's stream hands
	// a bouncer, after its first pull, only decisions created after that
	// pull began, so a push committing during the pull reaches it only at
	// its next start (docs/scale-out.md, "A race in LAPI's stream").
	waitFor(t, pollInterval, "the bridge's first sync", func() bool { return lines(br.out.String(), "sync finished", "pushed=40 ") == 1 })
	procs := []*proc{br}
	for i, ns := range s.pbx {
		procs = append(procs, startProc(t, t, fmt.Sprintf("pbx%d", i+1), ns, bin, s.pbxConfig(t.TempDir(), i)))
	}
	// Registered last, so first to run: every process stops at once.
	t.Cleanup(func() {
		for _, p := range procs {
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
		}
	})
	waitFor(t, 2*pollInterval, "every pbx holds the first sync's addresses", func() bool { return s.allHold("apiban", listed[len(listed)-1]) })

	t.Run("listing reaches every pbx", func(t *testing.T) {
		s.t = t
		attacker := "203.0.113.77"
		s.probe.attacker(attacker)
		s.assertDrop(attacker, false)
		s.sim.Add(attacker)
		took := waitFor(t, pollInterval+updateFrequency+slack, "every pbx holds "+attacker, func() bool { return s.allHold("apiban", attacker) })
		t.Logf("MEASURED listing to all %d pbx: %s (bound %s)", pbxCount, took.Round(100*time.Millisecond), pollInterval+updateFrequency+slack)
		s.assertDrop(attacker, true)
		listed = append(listed, attacker)
	})

	t.Run("cscli on lapi-b reaches every pbx, its delete lifts it", func(t *testing.T) {
		s.t = t
		manual := "198.51.100.88"
		s.probe.attacker(manual)
		s.lapiB.Cscli(t, "decisions", "add", "--ip", manual, "--duration", "1h", "--reason", "cluster test")
		waitFor(t, updateFrequency+slack+time.Second, "every pbx holds "+manual, func() bool { return s.allHold("cscli", manual) })
		s.assertDrop(manual, true)
		s.lapiB.Cscli(t, "decisions", "delete", "--ip", manual)
		waitFor(t, updateFrequency+slack+time.Second, "no pbx holds "+manual, func() bool { return s.noneHolds("cscli", manual) })
		s.assertDrop(manual, false)
	})

	t.Run("LAPI holds each address once", func(t *testing.T) {
		s.t = t
		s.assertOnce(listed)
	})

	var br2 *proc
	top := t
	ns2 := s.hub.attach(t, "bridge2", "10.77.0.21")
	t.Run("the bridge moves", func(t *testing.T) {
		s.t = t
		br.kill()
		if err := os.RemoveAll(dir + "/state"); err != nil {
			t.Fatal(err)
		}
		br2 = startProc(t, top, "bridge2", ns2, bin, s.bridgeConfig(t.TempDir()))
		waitFor(t, pollInterval, "the moved bridge's first sync", func() bool { return lines(br2.out.String(), "sync finished") > 0 })
		first := br2.out.String()
		if lines(first, "sync finished", "pushed=0") != 1 {
			t.Errorf("the moved bridge pushed something again on its first sync:\n%s", tail(first, 2000))
		}
		s.assertOnce(listed)

		next := "203.0.113.78"
		s.probe.attacker(next)
		s.sim.Add(next)
		waitFor(t, pollInterval+updateFrequency+slack, "every pbx holds "+next, func() bool { return s.allHold("apiban", next) })
		s.assertDrop(next, true)
		listed = append(listed, next)
		s.assertOnce(listed)
	})

	t.Run("LAPI loses its database", func(t *testing.T) {
		s.t = t
		if br2 == nil {
			t.Fatal("no moved bridge")
		}
		defer func() {
			if t.Failed() {
				t.Logf("bridge2 output (tail):\n%s", tail(br2.out.String(), 4000))
			}
		}()
		s.lapiA.Stop()
		s.lapiB.Stop()
		s.db.dropDB(t)
		s.db.createDB(t)
		for _, l := range []struct {
			lapi *lapitest.LAPI
			name string
		}{{s.lapiA, "cscli-a"}, {s.lapiB, "cscli-b"}} {
			if err := l.lapi.AddCscli(l.name); err != nil {
				t.Fatal(err)
			}
			l.lapi.Restart(t)
		}
		s.lapiA.AddMachine(t, "apiban-bridge", machinePassword)
		s.addBouncers()
		if n := len(s.db.activeRows(t, "apiban")); n != 0 {
			t.Fatalf("the new database holds %d addresses", n)
		}
		want := fmt.Sprintf("repaired=%d", len(listed))
		took := waitFor(t, pollInterval+slack, "the bridge logs "+want, func() bool {
			return lines(br2.out.String(), "LAPI had lost decisions", want) > 0
		})
		t.Logf("MEASURED database loss to repair: %s after the LAPIs were back (bound %s)", took.Round(100*time.Millisecond), pollInterval)
		s.assertOnce(listed)

		after := "203.0.113.79"
		s.probe.attacker(after)
		s.sim.Add(after)
		waitFor(t, pollInterval+updateFrequency+slack+updateFrequency, "every pbx holds "+after, func() bool { return s.allHold("apiban", after) })
		for _, a := range []string{"203.0.113.77", "203.0.113.78", after} {
			s.assertDrop(a, true)
		}
		if strings.Contains(br2.out.String(), machinePassword) {
			t.Error("the machine password reached the bridge's output")
		}
	})
}
