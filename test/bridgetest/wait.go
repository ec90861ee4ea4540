package bridgetest

import (
	"testing"
	"time"
)

// The one poll loop of the suites. The pause starts short, for cheap
// conditions, and grows to maxPause, so a condition that runs cscli or
// scrapes a daemon is not asked too often.
const (
	firstPause = 20 * time.Millisecond
	maxPause   = 500 * time.Millisecond
)

// Poll calls cond until it holds or limit passes, and reports whether it
// held. cond is called once more at the limit.
func Poll(limit time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(limit)
	for pause := firstPause; time.Now().Before(deadline); pause = min(2*pause, maxPause) {
		if cond() {
			return true
		}
		time.Sleep(min(pause, max(time.Until(deadline), 0)))
	}
	return cond()
}

// Eventually is Poll that stops the test when cond never held, naming
// what it waited for.
func Eventually(t testing.TB, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	if !Poll(limit, cond) {
		t.Fatalf("timed out after %s waiting for %s", limit, what)
	}
}
