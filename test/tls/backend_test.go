package tlstest

import (
	"context"
	"net/netip"
	"sync"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bouncer"
)

// recorder is a bouncer.Backend that keeps the set in memory, safe to
// read while the bouncer writes.
type recorder struct {
	mu    sync.Mutex
	set   map[netip.Prefix]bool
	loads int // Reconcile calls: the first stream answer arrived
}

func newRecorder() *recorder { return &recorder{set: map[netip.Prefix]bool{}} }

func (r *recorder) Name() string { return "recorder" }
func (r *recorder) Nested() bool { return true }
func (r *recorder) Close() error { return nil }

func (r *recorder) Reconcile(_ context.Context, elems []bouncer.Element) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.loads++
	r.set = map[netip.Prefix]bool{}
	for _, e := range elems {
		r.set[e.Prefix] = true
	}
	return nil
}

func (r *recorder) Apply(_ context.Context, c bouncer.Changes) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, d := range c.Delete {
		delete(r.set, prefixOf(d))
	}
	for _, e := range append(c.Refresh, c.Add...) {
		r.set[e.Prefix] = true
	}
	return nil
}

// prefixOf reads a Changes.Delete entry, whether the bouncer package
// gives a bare prefix or an Element (its backend interface is being
// reworked to count drops by origin).
func prefixOf[T netip.Prefix | bouncer.Element](v T) netip.Prefix {
	switch x := any(v).(type) {
	case bouncer.Element:
		return x.Prefix
	case netip.Prefix:
		return x
	}
	return netip.Prefix{}
}

func (r *recorder) Cleanup(context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.set = map[netip.Prefix]bool{}
	return nil
}

func (r *recorder) has(p netip.Prefix) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.set[p]
}

func (r *recorder) loaded() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.loads
}
