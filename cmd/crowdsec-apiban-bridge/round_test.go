package main

import (
	"errors"
	"testing"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bridge"
)

// A round reports once every set has synced: counts summed, each set's
// cursor, and a failure of the first set kept though the second succeeded
// (else /healthz would call a failing set healthy).
func TestRoundKeepsAFailedSet(t *testing.T) {
	r := &round{sets: 2}
	lost := errors.New("LAPI down")
	if _, done, _ := r.add("sip", bridge.Report{Pushed: 3, Cursor: "11"}, lost); done {
		t.Fatal("round done after one of two sets")
	}
	rep, done, err := r.add("http", bridge.Report{Pushed: 4, Repaired: 2, Cursor: "22"}, nil)
	if !done || rep.Pushed != 7 || rep.Repaired != 2 || rep.Cursor != "sip:11 http:22" {
		t.Fatalf("round: %+v done=%v; want pushed 7, repaired 2, both cursors", rep, done)
	}
	if !errors.Is(err, lost) || err.Error() != "set sip: LAPI down" {
		t.Fatalf("round error %v, want set sip's", err)
	}
	// The next round starts clean.
	r.add("sip", bridge.Report{Cursor: "12"}, nil)
	if rep, done, err := r.add("http", bridge.Report{Cursor: "23"}, nil); !done || err != nil || rep.Pushed != 0 || rep.Cursor != "sip:12 http:23" {
		t.Fatalf("next round: %+v, %v, %v", rep, done, err)
	}
	single := &round{sets: 1}
	if rep, done, err := single.add("sip", bridge.Report{Cursor: "5"}, nil); !done || err != nil || rep.Cursor != "5" {
		t.Fatalf("single set: %+v, %v, %v; want its cursor as is", rep, done, err)
	}
}
