package state

import (
	"maps"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"
)

// TestActiveSet checks that every kind of prefix comes back as it went in:
// IPv4 ones are packed into one integer, and an unmasked address, a
// length of 0 or 32, or an IPv4-mapped IPv6 address must not be confused
// with another prefix.
func TestActiveSet(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0).UTC()
	in := map[netip.Prefix]time.Time{}
	for i, s := range []string{
		"192.0.2.1/32", "192.0.2.1/24", "192.0.2.0/24", "0.0.0.0/0", "255.255.255.255/32",
		"::ffff:192.0.2.1/128", "2001:db8::/48", "2001:db8::1/128",
	} {
		in[netip.MustParsePrefix(s)] = t0.Add(time.Duration(i) * time.Hour)
	}
	var a ActiveSet
	for p, u := range in {
		a.Set(p, u.Add(400*time.Millisecond)) // kept to the second
	}
	if a.Len() != len(in) {
		t.Fatalf("Len %d, want %d", a.Len(), len(in))
	}
	got := maps.Collect(a.All())
	if !maps.EqualFunc(got, in, time.Time.Equal) {
		t.Fatalf("All gave %v\nwant %v", got, in)
	}
	for p, u := range in {
		if v, ok := a.Get(p); !ok || !v.Equal(u) {
			t.Errorf("Get(%s) = %v, %v; want %v", p, v, ok, u)
		}
	}
	if _, ok := a.Get(netip.MustParsePrefix("192.0.2.1/31")); ok {
		t.Fatal("Get found a prefix never set")
	}
	c := a.Clone()
	a.Delete(netip.MustParsePrefix("192.0.2.1/32"))
	a.Delete(netip.MustParsePrefix("2001:db8::/48"))
	if a.Len() != len(in)-2 || c.Len() != len(in) || a.Equal(&c) {
		t.Fatalf("after two deletes: Len %d, clone %d", a.Len(), c.Len())
	}
	if _, ok := a.Get(netip.MustParsePrefix("192.0.2.1/24")); !ok {
		t.Fatal("deleting 192.0.2.1/32 took 192.0.2.1/24 with it")
	}
}

// TestActiveSetEndsOutsideUint32: a single address whose end does not fit
// the compact form is kept elsewhere, and moving between the two forms
// never leaves it twice.
func TestActiveSetEndsOutsideUint32(t *testing.T) {
	p := netip.MustParsePrefix("203.0.113.9/32")
	var a ActiveSet
	for _, u := range []int64{-5, 1_800_000_000, 1 << 33, 0, 1<<32 - 1, 1 << 32, -1} {
		a.Set(p, time.Unix(u, 0))
		if got, ok := a.Get(p); !ok || got.Unix() != u || a.Len() != 1 {
			t.Fatalf("after Set(%d): Get = %d, %v; Len %d", u, got.Unix(), ok, a.Len())
		}
		n := 0
		for range a.All() {
			n++
		}
		if n != 1 {
			t.Fatalf("after Set(%d): All yields %d entries", u, n)
		}
	}
	a.clamp(1_800_000_000)
	if got, _ := a.Get(p); got.Unix() != -1 {
		t.Fatalf("clamp changed an end below its limit: %d", got.Unix())
	}
	a.Set(p, time.Unix(1<<33, 0))
	a.clamp(1_800_000_000)
	if got, _ := a.Get(p); got.Unix() != 1_800_000_000 || a.Len() != 1 {
		t.Fatalf("clamp: %d, Len %d", got.Unix(), a.Len())
	}
	a.Delete(p)
	if a.Len() != 0 {
		t.Fatalf("Len %d after Delete", a.Len())
	}
}

// TestActiveSetAgainstMap drives a set through random Sets, Deletes,
// prunes, clamps and snapshots (which move what was set since into the
// sorted base) beside a plain map, and checks they always agree.
func TestActiveSetAgainstMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	prefixes := []netip.Prefix{netip.MustParsePrefix("2001:db8::/48"), netip.MustParsePrefix("198.51.100.0/24")}
	for i := range 60 {
		prefixes = append(prefixes, netip.PrefixFrom(netip.AddrFrom4([4]byte{203, 0, 113, byte(i)}), 32))
	}
	ends := []int64{-1, 0, 1, 1_800_000_000, 1_800_000_500, 1<<32 - 1, 1 << 32}
	var a ActiveSet
	model := map[netip.Prefix]int64{}
	for step := range 5000 {
		p := prefixes[rng.IntN(len(prefixes))]
		switch op := rng.IntN(20); {
		case op < 10:
			u := ends[rng.IntN(len(ends))]
			a.setUnix(p, u)
			model[p] = u
		case op < 15:
			a.Delete(p)
			delete(model, p)
		case op < 17:
			a.adoptBase(a.singles())
		case op < 18:
			limit := ends[rng.IntN(len(ends))]
			a.deleteFunc(func(u int64) bool { return u <= limit })
			maps.DeleteFunc(model, func(_ netip.Prefix, u int64) bool { return u <= limit })
		case op < 19:
			limit := ends[rng.IntN(len(ends))]
			a.clamp(limit)
			for q, u := range model {
				model[q] = min(u, limit)
			}
		default:
			c := a.Clone()
			a.Delete(p) // the clone must not see it
			if c.Len() != len(model) {
				t.Fatalf("step %d: clone has %d, want %d", step, c.Len(), len(model))
			}
			a = c
		}
		got := map[netip.Prefix]int64{}
		for q, u := range a.allUnix() {
			if _, twice := got[q]; twice {
				t.Fatalf("step %d: %s yielded twice", step, q)
			}
			got[q] = u
		}
		if a.Len() != len(model) || !maps.Equal(got, model) {
			t.Fatalf("step %d: Len %d, set %v\nwant %v", step, a.Len(), got, model)
		}
		for _, q := range prefixes {
			u, ok := a.getUnix(q)
			if w, wok := model[q]; ok != wok || u != w {
				t.Fatalf("step %d: getUnix(%s) = %d, %v; want %d, %v", step, q, u, ok, w, wok)
			}
		}
	}
}
