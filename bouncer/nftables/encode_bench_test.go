package nftables

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bouncer"
	"github.com/google/nftables"
)

// load100k is the benchmarks' full load: 90,000 addresses and 10,000
// ranges of two origins, as TestKernel100kInOneBatch loads them.
func load100k() []bouncer.Element {
	elems := make([]bouncer.Element, 0, 100_000)
	for i := range 90_000 {
		elems = append(elems, elo("apiban", fmt.Sprintf("11.%d.%d.%d/32", i>>16, (i>>8)&0xff, i&0xff), time.Hour))
	}
	for i := range 10_000 {
		elems = append(elems, elo("crowdsec", fmt.Sprintf("12.%d.%d.0/24", i>>8, i&0xff), time.Hour))
	}
	return elems
}

// BenchmarkGroup100k is the Go side of a 100,000-element load before
// google/nftables marshals it: encoding every element into its set's list.
func BenchmarkGroup100k(b *testing.B) {
	elems := load100k()
	b.ReportAllocs()
	for b.Loop() {
		per := group(elems, true)
		if n := len(per[setKey{"apiban", setKind{}}]); n != 90_000 {
			b.Fatalf("%d addresses encoded", n)
		}
	}
}

// TestGroupKeepsKeysApart: keys cut from one buffer must not share bytes
// (a later key overwriting an earlier one would ban the wrong address).
func TestGroupKeepsKeysApart(t *testing.T) {
	elems := []bouncer.Element{elo("a", "192.0.2.1/32", time.Hour), elo("a", "198.51.100.0/24", time.Hour),
		elo("b", "2001:db8::1/128", time.Hour), elo("a", "192.0.2.2/32", time.Hour), elo("a", "255.255.255.0/24", time.Hour)}
	per := group(elems, true)
	var got []string
	for _, k := range sortedKeys(per) {
		for _, e := range per[k] {
			a, _ := netip.AddrFromSlice(e.Key)
			got = append(got, fmt.Sprintf("%s:%s:%v:%v", k.origin, a, e.IntervalEnd, e.Timeout))
		}
	}
	want := []string{"a:192.0.2.1:false:1h0m0s", "a:192.0.2.2:false:1h0m0s",
		"a:198.51.100.0:false:1h0m0s", "a:198.51.101.0:true:0s", "a:255.255.255.0:false:1h0m0s",
		"b:2001:db8::1:false:1h0m0s"}
	if !slices.Equal(got, want) {
		t.Errorf("grouped %v, want %v", got, want)
	}
	for _, els := range group(elems, false) {
		for _, e := range els {
			if e.Timeout != 0 {
				t.Errorf("timeout %s on a delete", e.Timeout)
			}
		}
	}
}

// TestChunksKeepIntervalsWhole: a set's elements go at most chunk (+1 for
// an interval's end) to a netlink message (docs/bouncer.md: up to 800),
// and an interval's start and end never travel apart.
func TestChunksKeepIntervalsWhole(t *testing.T) {
	var elems []bouncer.Element
	for i := range 1000 {
		elems = append(elems, elo("a", fmt.Sprintf("12.%d.%d.0/24", i>>8, i&0xff), time.Hour))
	}
	els := group(elems, true)[setKey{"a", setKind{ranges: true}}]
	var sizes []int
	err := each(&nftables.Set{Name: "s"}, els, func(_ *nftables.Set, part []nftables.SetElement) error {
		if part[0].IntervalEnd || !part[len(part)-1].IntervalEnd {
			t.Errorf("a message starts with an interval end or ends on a start")
		}
		sizes = append(sizes, len(part))
		return nil
	})
	if err != nil || !slices.Equal(sizes, []int{800, 800, 400}) {
		t.Errorf("messages of %v elements, %v; want 800, 800, 400", sizes, err)
	}
}
