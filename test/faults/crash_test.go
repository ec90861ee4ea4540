package faults

import (
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bridge/state"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/bridgetest"
)

// crashKills is how many kill -9 must land in the middle of a sync:
// CRASH_KILLS (make crash-test sets 25), else 5 so that make test stays
// short, and 2 with -short.
func crashKills(t *testing.T) int {
	if s := os.Getenv("CRASH_KILLS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("CRASH_KILLS=%q: want a positive integer", s)
		}
		return n
	}
	if testing.Short() {
		return 2
	}
	return 5
}

// kill -9 at random points of a 20,000-address sync, restart, again and
// again. After every kill the state file parses (or is not written yet);
// at the end every address is in LAPI exactly once.
func TestCrashLoopLosesNothingAndDuplicatesNothing(t *testing.T) {
	kills := crashKills(t)
	r := newRig(t, rigOpts{batch: 200})
	r.feed(20000, 51)
	seed := uint64(time.Now().UnixNano())
	t.Logf("random seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 52))

	killed, completed, midPush := 0, 0, 0
	for round := 0; killed < kills; round++ {
		if round >= 4*kills {
			t.Fatalf("only %d of %d kills landed in %d rounds (syncs too fast?)", killed, kills, round)
		}
		// Every other run is killed at a random time; the others a few
		// ms after a push began, so that kills keep landing between a
		// push and its record even though recording one takes well
		// under a millisecond.
		atPush := round%2 == 1
		delay := 50*time.Millisecond + time.Duration(rng.Int64N(int64(2*time.Second)))
		if atPush {
			delay = time.Duration(rng.Int64N(int64(30 * time.Millisecond)))
		}
		finished, err := runAndKill(r, delay, atPush)
		if err != nil {
			t.Fatal(err)
		}
		if finished {
			// Nothing left to interrupt: give the next run work.
			completed++
			r.feed(1500, 60+uint64(round))
			continue
		}
		killed++
		r.assertStateParses()
		interrupted := r.pushInterrupted()
		if interrupted {
			midPush++
		}
		when := "after " + delay.Round(time.Millisecond).String()
		if atPush {
			when = delay.Round(time.Millisecond).String() + " after a push began"
		}
		t.Logf("kill %d %s: %d recorded active, push unconfirmed: %v", killed, when, r.activeRecorded(), interrupted)
	}
	t.Logf("%d kills landed (%d while a push was unconfirmed), %d runs completed before their kill",
		killed, midPush, completed)

	if code, out := r.once(); code != 0 {
		t.Fatalf("the run after the last kill failed:\n%s", out)
	}
	r.assertStateParses()
	r.waitConverged(nil, time.Minute)
	if st := r.savedState(); st.Active.Len() != len(r.want) {
		t.Fatalf("state holds %d active, LAPI %d", st.Active.Len(), len(r.want))
	}
}

// runAndKill starts a sync and sends SIGKILL after delay (counted from
// the start, or with atPush from the moment the sync writes a push
// marker); finished says the sync ended on its own first (then it must
// have succeeded).
func runAndKill(r *rig, delay time.Duration, atPush bool) (finished bool, err error) {
	stale := r.pushInterrupted()
	cmd := exec.Command(bridgeBin, "-c", r.config, "--once")
	out := &bridgetest.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return false, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	ended := func(err error) (bool, error) {
		bridgetest.AssertNoSecrets(r.t, out.String(), apiKey, password)
		if err != nil {
			return true, errors.New("a sync failed without being killed:\n" + out.String())
		}
		return true, nil
	}
	if atPush {
		if over, werr := waitPushBegins(r, stale, done); over {
			return ended(werr)
		}
	}
	timer := time.NewTimer(delay)
	defer timer.Stop()
	select {
	case err := <-done:
		return ended(err)
	case <-timer.C:
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-done
	bridgetest.AssertNoSecrets(r.t, out.String(), apiKey, password)
	return false, nil
}

// waitPushBegins polls, every millisecond, until the running sync has
// written a push marker of its own: one left by the last kill must first
// be cleared (the read-back does that). It returns when the sync ends
// (over, with its error) or, if no push begins, after 10 s.
func waitPushBegins(r *rig, stale bool, done <-chan error) (over bool, err error) {
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			return true, err
		case <-tick.C:
		}
		on := r.pushInterrupted()
		if stale {
			stale = on
			continue
		}
		if on {
			return false, nil
		}
	}
	return false, nil
}

// assertStateParses: after any crash the state file is absent (never
// saved yet) or whole.
func (r *rig) assertStateParses() {
	r.t.Helper()
	if _, err := state.Load(r.state); err != nil && !errors.Is(err, state.ErrNotExist) {
		r.t.Fatalf("state file after a kill: %v", err)
	}
}

// pushInterrupted: the kill left a push whose outcome the next run must
// read back from LAPI.
func (r *rig) pushInterrupted() bool {
	r.t.Helper()
	on, err := state.PushInterrupted(r.state)
	if err != nil {
		r.t.Fatal(err)
	}
	return on
}

// activeRecorded is how many decisions the state file records (0 before
// the first save).
func (r *rig) activeRecorded() int {
	st, err := state.Load(r.state)
	if err != nil {
		return 0
	}
	return st.Active.Len()
}
