package lapi_test

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bridge/lapi"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/lapitest"
)

// Against a real LAPI: Push returns the IDs of the alerts it created; Edge
// finds the oldest and newest of them, follows when the oldest is deleted
// (as LAPI's flush does) and finds none once all are; Active lists the
// alerts with the end of their longest decision.
func TestEdgeFollowsWhatLAPIHolds(t *testing.T) {
	l := lapitest.Start(t)
	l.AddMachine(t, "bridge-test", "s3cret-Pw")
	c := newClient(t, l, "s3cret-Pw")
	ctx := context.Background()
	now := time.Now()
	alerts, err := c.Push(ctx, week(
		netip.MustParsePrefix("203.0.113.1/32"), netip.MustParsePrefix("203.0.113.2/32"),
		netip.MustParsePrefix("203.0.113.3/32"), netip.MustParsePrefix("203.0.113.4/32"),
		netip.MustParsePrefix("203.0.113.5/32")), now)
	if err != nil {
		t.Fatal(err)
	}
	ids := slicesSorted(alerts)
	if len(ids) != 3 {
		t.Fatalf("Push returned alerts %v, want 3 (2 decisions per alert)", ids)
	}
	// Another origin's alert, newer than ours, is not ours to see.
	l.Cscli(t, "decisions", "add", "-i", "198.51.100.9", "-d", "1h")
	assertEdge(t, c, false, ids[0], true)
	assertEdge(t, c, true, ids[2], true)

	held, err := c.Active(ctx, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if got := slicesSorted(held.Alerts); !slices.Equal(got, ids) {
		t.Fatalf("Active lists alerts %v, want %v", got, ids)
	}
	for id, until := range held.Alerts {
		if until.Sub(now) < 167*time.Hour {
			t.Errorf("alert %d: decisions end %s, want about a week from now", id, until)
		}
	}

	l.Cscli(t, "alerts", "delete", "--id", itoa(ids[0]))
	assertEdge(t, c, false, ids[1], true)
	l.Cscli(t, "decisions", "delete", "--origin", "apiban")
	assertEdge(t, c, false, 0, false)
	assertEdge(t, c, true, 0, false)
}

func assertEdge(t *testing.T, c *lapi.Client, newest bool, want int64, wantFound bool) {
	t.Helper()
	id, found, err := c.Edge(context.Background(), newest)
	if err != nil {
		t.Fatal(err)
	}
	if id != want || found != wantFound {
		t.Fatalf("Edge(newest=%v) = %d, %v; want %d, %v", newest, id, found, want, wantFound)
	}
}

func slicesSorted(m map[int64]time.Time) []int64 {
	var out []int64
	for id := range m {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// A LAPI that accepts the connection and never answers fails each call
// once crowdsec.timeout has passed, instead of hanging the sync.
func TestHungLAPIFailsWithinTheTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			defer conn.Close() // held open, never answered
		}
	}()
	c, err := lapi.New(lapi.Options{
		URL: "http://" + ln.Addr().String() + "/", Login: "m", Password: "p", UserAgent: "t/1",
		Origin: "apiban", Scenario: "s", Type: "ban", Timeout: 500 * time.Millisecond, BatchSize: 10,
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 3)
	go func() {
		_, err := c.Push(context.Background(), week(netip.MustParsePrefix("203.0.113.1/32")), time.Now())
		done <- err
		_, _, err = c.Edge(context.Background(), true)
		done <- err
		_, err = c.Active(context.Background(), time.Now())
		done <- err
	}()
	for i := range 3 {
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), "deadline exceeded") {
				t.Fatalf("call %d: err %v, want a deadline error", i, err)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("call %d still waiting on a LAPI that never answers", i)
		}
	}
}
