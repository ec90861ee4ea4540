package mirror

import (
	"context"
	"maps"
	"net/netip"
	"slices"
	"testing"

	"github.com/crowdsecurity/crowdsec/pkg/models"
)

// The bridge's own APIBAN client, pointed at the mirror, pulls 10,000
// entries page by page (v1 and v2) and gets exactly the served set, in
// ceil(10,000/250) full pages plus the end-of-list answer.
func TestClientPullsWholeSet(t *testing.T) {
	for _, version := range []string{"v1", "v2"} {
		t.Run(version, func(t *testing.T) {
			ds := append(addrs(1, 9999), decision(20000, "Range", "198.51.100.0/24"))
			s := readySet(ds...)
			srv := serve(t, s, Options{})
			c := client(t, srv.URL, version)
			got, pages := map[netip.Prefix]int{}, 0
			cursor := ""
			for {
				b, err := c.Next(context.Background(), cursor)
				if err != nil {
					t.Fatalf("page %d: %v", pages, err)
				}
				for _, p := range b.Prefixes {
					got[p]++
				}
				if b.Invalid != 0 {
					t.Fatalf("invalid entries %d", b.Invalid)
				}
				pages++
				if b.Cursor != "" {
					cursor = b.Cursor
				}
				if b.Last {
					break
				}
			}
			want := prefixSet(s.All())
			if len(want) != 10000 || len(got) != len(want) {
				t.Fatalf("got %d entries, want %d (served %d)", len(got), 10000, len(want))
			}
			for p, n := range got {
				if !want[p] || n != 1 {
					t.Fatalf("%s: got %d times, served %v", p, n, want[p])
				}
			}
			if pages != 41 { // 40 full pages, then the end of the list
				t.Errorf("pages %d, want 41", pages)
			}
		})
	}
}

// A restart mid-pull: a new Set fed the same LAPI decisions (as the
// stream's first answer after a restart is) takes the old cursor and the
// client goes on where it was: nothing skipped, nothing repeated; what
// LAPI added meanwhile comes after.
func TestCursorSurvivesRestart(t *testing.T) {
	ds := addrs(1, 10000)
	first := serve(t, readySet(ds...), Options{})
	c := client(t, first.URL, "v1")
	got := map[netip.Prefix]int{}
	cursor := ""
	for range 10 {
		b, err := c.Next(context.Background(), cursor)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range b.Prefixes {
			got[p]++
		}
		cursor = b.Cursor
	}
	first.Close()

	// The restarted bridge: LAPI deleted one entry already pulled and one
	// not yet pulled, and added 300 more.
	after := append(append([]*models.Decision{}, ds...), addrs(20001, 300)...)
	restarted := readySet(after...)
	restarted.Apply(&models.DecisionsStreamResponse{Deleted: []*models.Decision{ds[5], ds[9000]}})
	second := serve(t, restarted, Options{})
	c = client(t, second.URL, "v1")
	for {
		b, err := c.Next(context.Background(), cursor)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range b.Prefixes {
			got[p]++
		}
		if b.Cursor != "" {
			cursor = b.Cursor
		}
		if b.Last {
			break
		}
	}
	want := prefixSet(restarted.All())
	for p := range want {
		if got[p] != 1 {
			t.Fatalf("%s pulled %d times", p, got[p])
		}
	}
	extra := 0
	for p := range maps.Keys(got) {
		if !want[p] {
			extra++
		}
	}
	if extra != 1 { // ds[5], pulled before LAPI deleted it
		t.Fatalf("%d pulled entries are not served any more, want 1", extra)
	}
}

// A resync (LAPI's whole list again) replaces the set: what LAPI no
// longer holds stops being served, the rest keeps its cursor, and a
// cursor beyond every ID in the new list starts from the beginning.
func TestReplaceKeepsCursorRules(t *testing.T) {
	s := readySet(decision(5, "Ip", "203.0.113.7"), decision(7, "Range", "198.51.100.0/24"), decision(20, "Ip", "203.0.113.9"))
	added, removed := s.Replace(&models.DecisionsStreamResponse{New: []*models.Decision{
		decision(7, "Range", "198.51.100.0/24"), decision(12, "Ip", "2001:db8::c")}})
	if added != 1 || removed != 2 {
		t.Errorf("added %d removed %d, want 1 and 2", added, removed)
	}
	if got, want := s.All(), []string{"198.51.100.0/24", "2001:db8::c"}; !slices.Equal(got, want) {
		t.Errorf("served %v, want %v", got, want)
	}
	if texts, next := s.Page(1007, PageSize); !slices.Equal(texts, []string{"2001:db8::c"}) || next != "1012" {
		t.Errorf("after 1007: %v %q, want [2001:db8::c] 1012", texts, next)
	}
	// 1020 named the removed entry, beyond every ID now held.
	if texts, _ := s.Page(1020, PageSize); len(texts) != 2 {
		t.Errorf("after 1020: %v, want the whole list", texts)
	}
	if r := s.Resyncs(); r != (Resyncs{Count: 1, Added: 1, Removed: 2}) {
		t.Errorf("resyncs %+v", r)
	}
}
