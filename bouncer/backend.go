// Package bouncer is the bridge's optional embedded firewall bouncer: it
// streams decisions from CrowdSec's Local API (go-cs-bouncer), keeps, per
// address or range, the longest active ban, and keeps kernel sets in step
// through a small Backend (nftables, ipset). Each stream tick reaches the
// kernel as one transaction.
package bouncer

import (
	"context"
	"errors"
	"net/netip"
	"time"
)

// Element is one address or range to drop, for Timeout from now.
type Element struct {
	Prefix  netip.Prefix
	Timeout time.Duration
}

// Changes is what one stream tick changes in the kernel. A backend applies
// it in one transaction, in this order: Delete, then Refresh (delete and
// add again, so that every kernel takes the new timeout), then Add.
type Changes struct {
	Delete  []netip.Prefix
	Refresh []Element
	Add     []Element
}

// Empty reports whether there is nothing to do.
func (c Changes) Empty() bool {
	return len(c.Delete) == 0 && len(c.Refresh) == 0 && len(c.Add) == 0
}

// Backend owns a set of kernel objects (tables, chains, sets) and nothing
// else: it never modifies an object it did not create.
type Backend interface {
	// Name is the mode, for logs.
	Name() string
	// Nested reports whether the backend's sets accept a range and a
	// narrower range inside it side by side. When false, the bouncer
	// gives it only the widest of nested ranges.
	Nested() bool
	// Reconcile replaces every object of ours (leftovers of a crash
	// included) with fresh ones holding exactly elems, in one transaction.
	Reconcile(ctx context.Context, elems []Element) error
	// Apply applies one tick's changes in one transaction.
	Apply(ctx context.Context, c Changes) error
	// Cleanup removes every object of ours. Safe to call when none exist.
	Cleanup(ctx context.Context) error
	// Close releases the backend's resources; the kernel objects stay.
	Close() error
}

// Counters are a backend's drop counters, for metrics.
type Counters struct {
	Packets uint64
	Bytes   uint64
}

// CounterReader is implemented by backends that count dropped traffic.
type CounterReader interface {
	Dropped(ctx context.Context) (Counters, error)
}

// ErrNotLoaded is returned by Lookup when our kernel objects do not exist:
// the bouncer is not running (or removed them when it stopped).
var ErrNotLoaded = errors.New("not loaded")

// Match is one element of ours that holds an address.
type Match struct {
	Set    string
	Prefix netip.Prefix
	// Left is the element's remaining timeout; 0 when the kernel does
	// not say.
	Left time.Duration
}

// Looker is implemented by backends that can say which of their elements
// hold an address. Lookup only reads: it never creates or changes a
// kernel object, so another process (`check`) may call it while the
// daemon runs.
type Looker interface {
	Lookup(ctx context.Context, addr netip.Addr) ([]Match, error)
}
