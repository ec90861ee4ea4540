package apiban_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/source/apiban"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/apibansim"
)

// expectedRequests is the documented cost of a full pull of n entries.
func expectedRequests(n int) int {
	if n%apiban.PageSize == 0 {
		return n/apiban.PageSize + 1
	}
	return (n + apiban.PageSize - 1) / apiban.PageSize
}

func TestFullPullPaging(t *testing.T) {
	for _, version := range []string{"v1", "v2"} {
		for _, n := range []int{0, 1, 249, 250, 251, 500, 501} {
			t.Run(fmt.Sprintf("%s/%d", version, n), func(t *testing.T) {
				sim := newSim(t, apibansim.Options{})
				ips := apibansim.PublicIPv4s(n, uint64(n))
				sim.Add(ips...)
				c := newClient(t, fastConfig(sim, version))

				got, cursor, invalid := pull(t, c, "")

				samePrefixes(t, got, hostPrefixes(ips))
				if invalid != 0 {
					t.Errorf("invalid = %d, want 0", invalid)
				}
				if want := expectedRequests(n); c.Requests() != want || sim.Requests() != want {
					t.Errorf("requests: client %d, sim %d, want %d", c.Requests(), sim.Requests(), want)
				}
				wantCursor := sim.LastID()
				if n == 0 {
					wantCursor = apiban.StartCursor
				}
				if cursor != wantCursor {
					t.Errorf("final cursor %q, want %q", cursor, wantCursor)
				}
				if cs := sim.Cursors(); cs[0] != apiban.StartCursor {
					t.Errorf("first cursor sent %q, want %q", cs[0], apiban.StartCursor)
				}
			})
		}
	}
}

func TestCursorsSentAreBatchIDs(t *testing.T) {
	sim := newSim(t, apibansim.Options{StartID: 5000})
	sim.Add(apibansim.PublicIPv4s(600, 1)...)
	c := newClient(t, fastConfig(sim, "v2"))
	pull(t, c, "")
	// Entry k has ID 5000+k, so batches end at 5249, 5499 and 5599.
	want := []string{"100", "5249", "5499"}
	if got := sim.Cursors(); !slices.Equal(got, want) {
		t.Fatalf("cursors sent %q, want %q", got, want)
	}
}

func TestEndForms(t *testing.T) {
	for _, form := range apibansim.EndForms() {
		for _, n := range []int{0, 250} {
			t.Run(fmt.Sprintf("%s/%d", form, n), func(t *testing.T) {
				sim := newSim(t, apibansim.Options{EndForm: form})
				sim.Add(apibansim.PublicIPv4s(n, 7)...)
				c := newClient(t, fastConfig(sim, "v2"))
				cursor := ""
				if n > 0 {
					b, err := c.Next(context.Background(), "")
					if err != nil || b.Last || len(b.Prefixes) != n {
						t.Fatalf("first batch: %d prefixes, last %v, err %v", len(b.Prefixes), b.Last, err)
					}
					cursor = b.Cursor
				}
				b, err := c.Next(context.Background(), cursor)
				if err != nil {
					t.Fatalf("end form answered with error: %v", err)
				}
				sent := cursor
				if sent == "" {
					sent = apiban.StartCursor
				}
				if !b.Last || b.Cursor != sent || len(b.Prefixes) != 0 || b.Invalid != 0 {
					t.Fatalf("got %+v, want an empty last batch keeping cursor %q", b, sent)
				}
				if c.Requests() != 1+min(n, 1) {
					t.Fatalf("end form was retried: %d requests", c.Requests())
				}
			})
		}
	}
}

func TestIncrementalPullAndRelisting(t *testing.T) {
	sim := newSim(t, apibansim.Options{})
	old := apibansim.PublicIPv4s(300, 3)
	sim.Add(old...)
	c := newClient(t, fastConfig(sim, "v2"))
	_, saved, _ := pull(t, c, "")

	fresh := apibansim.PublicIPv4s(305, 4)[300:]
	sim.Add(fresh...)
	sim.Add(old[10]) // seen again by the honeypots: re-listed under a new ID
	got, next, _ := pull(t, c, saved)
	samePrefixes(t, got, hostPrefixes(append(slices.Clone(fresh), old[10])))
	if next != sim.LastID() {
		t.Fatalf("cursor %q, want %q", next, sim.LastID())
	}

	before := c.Requests()
	got, again, _ := pull(t, c, next)
	if len(got) != 0 || again != next || c.Requests() != before+1 {
		t.Fatalf("idle pull: %d prefixes, cursor %q (want %q), %d requests", len(got), again, next, c.Requests()-before)
	}
}

func TestSets(t *testing.T) {
	sim := newSim(t, apibansim.Options{})
	sip := apibansim.PublicIPv4s(3, 10)
	web := apibansim.PublicIPv4s(4, 11)
	sim.Add(sip[:2]...)
	sim.AddSet(apibansim.SetHTTP, web...)
	sim.Add(sip[2])
	cases := []struct {
		version, set string
		want         []string
	}{
		{"v1", "", sip},
		{"v2", "", sip},
		{"v2", "sip", sip},
		{"v2", "http", web},
		{"v2", "all", append(slices.Clone(sip), web...)},
	}
	for _, tc := range cases {
		t.Run(tc.version+"/"+tc.set, func(t *testing.T) {
			cfg := fastConfig(sim, tc.version)
			cfg.Set = tc.set
			got, _, _ := pull(t, newClient(t, cfg), "")
			samePrefixes(t, got, hostPrefixes(tc.want))
		})
	}
}

func TestEntriesNormalisedAndInvalidCounted(t *testing.T) {
	sim := newSim(t, apibansim.Options{})
	sim.Add("192.0.2.1", "not-an-ip", "2001:db8::7", "::ffff:198.51.100.9", "203.0.113.77/24",
		" 192.0.2.9\n", "0.0.0.0/0", "", "2001:db8:1::5/48", "1.2.3.4:5060")
	c := newClient(t, fastConfig(sim, "v1"))
	b, err := c.Next(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"192.0.2.1/32", "2001:db8::7/128", "198.51.100.9/32", "203.0.113.0/24", "192.0.2.9/32", "2001:db8:1::/48"}
	var got []string
	for _, p := range b.Prefixes {
		got = append(got, p.String())
	}
	if !slices.Equal(got, want) || b.Invalid != 4 || !b.Last {
		t.Fatalf("got %q invalid %d last %v, want %q invalid 4 last", got, b.Invalid, b.Last, want)
	}
}
