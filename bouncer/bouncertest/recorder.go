// Package bouncertest holds the fake kernel the bouncer's tests share: a
// bouncer.Backend that records calls and keeps what a kernel would hold.
package bouncertest

import (
	"context"
	"errors"
	"maps"
	"net/netip"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bouncer"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/source"
)

// Key is one element in one origin's set.
type Key struct {
	Prefix netip.Prefix
	Origin string
}

// Recorder is a bouncer.Backend that records calls and keeps the
// resulting sets, one per origin, refusing what a kernel would refuse
// (deleting or refreshing an absent element) and doing what an older
// kernel does: an add of an element already in its set keeps the old
// timeout. It is safe to read while a bouncer writes.
type Recorder struct {
	mu       sync.Mutex
	nested   bool
	copies   map[Key]time.Duration // every element of every origin's set
	calls    []string
	changes  []bouncer.Changes
	failNext bool
	cleaned  bool
	closed   bool
	// With now set, the recorder acts as an nftables kernel: elements
	// time out, and a range overlapping another range of its set is
	// refused.
	now    func() time.Time
	expiry map[Key]time.Time
}

// NewRecorder returns an empty recorder; nested is what Nested answers.
func NewRecorder(nested bool) *Recorder {
	return &Recorder{nested: nested, copies: map[Key]time.Duration{}, expiry: map[Key]time.Time{}}
}

// SetClock makes elements time out by now, and ranges of a set refuse
// overlaps (unless nested), as in an nftables kernel.
func (r *Recorder) SetClock(now func() time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.now = now
}

// FailNext makes the next Apply fail, as a refused netlink batch.
func (r *Recorder) FailNext() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failNext = true
}

func (r *Recorder) Name() string { return "recorder" }
func (r *Recorder) Nested() bool { return r.nested }

func (r *Recorder) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	return nil
}

func (r *Recorder) Cleanup(context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cleaned = true
	return nil
}

func (r *Recorder) Reconcile(_ context.Context, elems []bouncer.Element) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, "reconcile")
	r.copies = map[Key]time.Duration{}
	r.expiry = map[Key]time.Time{}
	for _, e := range elems {
		r.put(r.copies, e)
	}
	return nil
}

func key(e bouncer.Element) Key { return Key{e.Prefix, e.Origin} }

// put stores e with its timeout, as a fresh element.
func (r *Recorder) put(into map[Key]time.Duration, e bouncer.Element) {
	into[key(e)] = e.Timeout
	if r.now != nil {
		r.expiry[key(e)] = r.now().Add(e.Timeout)
	}
}

// expire drops what timed out, as the kernel does.
func (r *Recorder) expire() {
	if r.now == nil {
		return
	}
	for k, until := range r.expiry {
		if !until.After(r.now()) {
			delete(r.copies, k)
			delete(r.expiry, k)
		}
	}
}

func (r *Recorder) refuses(next map[Key]time.Duration, e bouncer.Element) bool {
	if r.now == nil || r.nested || !source.IsRange(e.Prefix) {
		return false
	}
	for q := range next {
		if q.Origin == e.Origin && q.Prefix != e.Prefix && source.IsRange(q.Prefix) && q.Prefix.Overlaps(e.Prefix) {
			return true
		}
	}
	return false
}

func (r *Recorder) Apply(_ context.Context, c bouncer.Changes) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, "apply")
	r.changes = append(r.changes, c)
	r.expire()
	if r.failNext {
		r.failNext = false
		return errors.New("refused")
	}
	next := maps.Clone(r.copies)
	for _, e := range c.Delete {
		if _, ok := next[key(e)]; !ok {
			return errors.New("delete of " + e.Prefix.String() + " absent from the set of " + e.Origin)
		}
		delete(next, key(e))
	}
	for _, e := range c.Refresh {
		if _, ok := next[key(e)]; !ok {
			return errors.New("refresh of " + e.Prefix.String() + " absent from the set of " + e.Origin)
		}
	}
	fresh := slices.Concat(c.Refresh, c.Renew)
	for _, e := range c.Add {
		if r.refuses(next, e) {
			return errors.New("interval overlaps with an existing one: " + e.Prefix.String())
		}
		if _, present := next[key(e)]; !present {
			fresh = append(fresh, e)
		}
	}
	r.copies = next
	for _, e := range fresh {
		r.put(r.copies, e)
	}
	return nil
}

// Calls lists the calls so far: "reconcile" and "apply".
func (r *Recorder) Calls() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

// Reconciles counts the full loads so far.
func (r *Recorder) Reconciles() int {
	n := 0
	for _, c := range r.Calls() {
		if c == "reconcile" {
			n++
		}
	}
	return n
}

// Changes lists what each Apply was given.
func (r *Recorder) Changes() []bouncer.Changes {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.changes)
}

// LastChanges is what the last Apply was given.
func (r *Recorder) LastChanges() bouncer.Changes {
	c := r.Changes()
	if len(c) == 0 {
		return bouncer.Changes{}
	}
	return c[len(c)-1]
}

// Cleaned and Closed report whether Cleanup and Close were called.
func (r *Recorder) Cleaned() bool { r.mu.Lock(); defer r.mu.Unlock(); return r.cleaned }
func (r *Recorder) Closed() bool  { r.mu.Lock(); defer r.mu.Unlock(); return r.closed }

// Set is what the kernel holds now, by prefix, with each timeout (an
// element in two origins' sets is the test's failure, reported by
// Prefixes).
func (r *Recorder) Set() map[netip.Prefix]time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expire()
	out := map[netip.Prefix]time.Duration{}
	for k, d := range r.copies {
		out[k.Prefix] = d
	}
	return out
}

// Has reports whether some origin's set holds p.
func (r *Recorder) Has(p netip.Prefix) bool {
	_, ok := r.Set()[p]
	return ok
}

// Origin is the origin whose set holds p.
func (r *Recorder) Origin(p netip.Prefix) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k := range r.copies {
		if k.Prefix == p {
			return k.Origin
		}
	}
	return ""
}

// Left is the time p has left in the kernel (needs SetClock).
func (r *Recorder) Left(p netip.Prefix) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, until := range r.expiry {
		if k.Prefix == p {
			return until.Sub(r.now())
		}
	}
	return 0
}

// Prefixes lists every element of every set, sorted, once per set that
// holds it.
func (r *Recorder) Prefixes() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expire()
	var out []string
	for k := range r.copies {
		out = append(out, k.Prefix.String())
	}
	sort.Strings(out)
	return out
}
