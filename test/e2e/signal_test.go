package e2e

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/apibansim"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/bridgetest"
)

// SIGUSR1 makes the daemon run a full resync at once (long before the next
// poll), which fetches the whole list again and pushes nothing new.
func TestSIGUSR1RunsAFullResync(t *testing.T) {
	e := newEnv(t)
	e.setConfig(func(c *bridgetest.Config) { c.APIBAN.PollInterval = time.Hour })
	e.sim.Add(apibansim.PublicIPv4s(300, 9)...)
	d := e.daemon()
	logs := d.Log
	syncs := func() int { return strings.Count(logs.String(), `msg="sync finished"`) }
	bridgetest.Eventually(t, 30*time.Second, "the first sync", func() bool { return syncs() == 1 })
	e.sim.ResetStats()
	d.Signal(syscall.SIGUSR1)
	bridgetest.Eventually(t, 30*time.Second, "the sync SIGUSR1 asks for", func() bool { return syncs() == 2 })
	last := logs.String()[strings.LastIndex(logs.String(), `msg="sync finished"`):]
	for _, want := range []string{"full=true", "fetched=300", "pushed=0 ", "already_active=300"} {
		if !strings.Contains(last, want) {
			t.Fatalf("resync line lacks %q: %s", want, last)
		}
	}
	if got := e.sim.Requests(); got != 2 {
		t.Errorf("full resync of 300 entries used %d requests, want 2", got)
	}
	bridgetest.AssertNoSecrets(t, logs.String(), apiKey, password)
}
