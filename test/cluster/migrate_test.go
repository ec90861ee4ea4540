package cluster

import (
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/apibansim"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/lapitest"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/netns"
)

// TestMigrationSQLiteToPostgres is docs/scale-out.md's runbook: a site's
// LAPI on SQLite holds the bridge's decisions; LAPI moves to a new
// PostgreSQL database at the same address, its machines added again; the
// bridge, given nothing, repairs it in one sync: LAPI then holds every
// address once. Everything on loopback.
func TestMigrationSQLiteToPostgres(t *testing.T) {
	netns.Require(t)
	sim := apibansim.New(apibansim.Options{MaxRequests: apibansim.Unlimited})
	t.Cleanup(sim.Close)
	listed := apibansim.PublicIPv4s(300, 4)
	sim.Add(listed...)

	old := lapitest.Start(t)
	old.AddMachine(t, "apiban-bridge", machinePassword)
	dir := t.TempDir()
	cfg := writeFile(t, dir, "bridge.yaml", fmt.Sprintf(`apiban:
  api_key: %s
  url: %s
  max_requests: 0
crowdsec:
  lapi_url: %s
  login: apiban-bridge
  password: %s
decisions:
  max_new_per_sync: 0
state_file: %s/state.json
prometheus:
  enabled: false
`, sim.Key(), sim.URL(), old.URL, machinePassword, dir))
	once(t, cfg, "pushed=300")
	if n := len(old.Decisions(t, "apiban")); n != 300 {
		t.Fatalf("SQLite LAPI holds %d, want 300", n)
	}

	// The runbook: stop LAPI, point db_config at PostgreSQL, start it,
	// add the machines again (they live in the database).
	old.Stop()
	addr := strings.TrimSuffix(strings.TrimPrefix(old.URL, "http://"), "/")
	db := startPG(t, "", "127.0.0.1", freePort(t))
	lapi := lapitest.StartWith(t, t.TempDir(), lapitest.With{DBConfig: db.dbConfig(), Listen: addr})
	lapi.AddMachine(t, "apiban-bridge", machinePassword)

	out := once(t, cfg, "repaired=300")
	if lines(out, "LAPI had lost decisions", "repaired=300") != 1 {
		t.Errorf("no repair line:\n%s", out)
	}
	rows := db.activeRows(t, "apiban")
	for _, a := range listed {
		if rows[a] != 1 {
			t.Errorf("PostgreSQL holds %d active decisions for %s, want 1", rows[a], a)
		}
	}
	if len(rows) != len(listed) {
		t.Errorf("PostgreSQL holds %d addresses, want %d", len(rows), len(listed))
	}
	// And one more sync pushes nothing.
	once(t, cfg, "pushed=0 repaired=0")
}

// once runs one sync (-once) and requires a "sync finished" line holding
// want; it returns the output.
func once(t *testing.T, cfg, want string) string {
	t.Helper()
	out, err := exec.Command(bin, "-c", cfg, "-once").CombinedOutput()
	if err != nil || lines(string(out), "sync finished", want) != 1 {
		t.Fatalf("-once: %v, want a sync finished line with %q:\n%s", err, want, out)
	}
	if strings.Contains(string(out), machinePassword) {
		t.Fatal("the machine password reached the output")
	}
	return string(out)
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
