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
	"strings"
	"time"
	"unicode/utf8"
)

// Element is one address or range to drop, for Timeout from now. Origin
// is the origin its drops are counted under: that of its longest decision.
// Backends keep each origin's elements in sets of their own, so that the
// kernel counts drops by origin.
type Element struct {
	Prefix  netip.Prefix
	Timeout time.Duration
	Origin  string
}

// Changes is what one stream tick changes in the kernel. A backend applies
// it in one transaction, in this order: Delete, then Refresh (delete and
// add again, so that every kernel takes the new timeout), then Renew and
// Add. A Delete's Origin names the set the element is in (its Timeout is
// unused); an element whose origin changes is deleted from the old
// origin's set and added to the new one's.
type Changes struct {
	Delete  []Element
	Refresh []Element
	// Renew holds elements whose previous copy was left to time out: it
	// may still be in the set or already gone. Afterwards the set must
	// hold exactly one copy, with the new timeout, either way.
	Renew []Element
	Add   []Element
}

// Empty reports whether there is nothing to do.
func (c Changes) Empty() bool {
	return len(c.Delete) == 0 && len(c.Refresh) == 0 && len(c.Renew) == 0 && len(c.Add) == 0
}

// Marker marks the kernel objects the bouncer created: the comment of
// the first rule of each nftables chain of ours, the comment of an
// element of the ipset registry. An object with our name but without it
// is another program's: the backends refuse to change or delete it
// (docs/bouncer.md, "Objects it owns").
const Marker = "crowdsec-apiban-bridge"

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

// TimeoutCapper is implemented by backends whose kernel sets take
// timeouts up to a limit (ipset: about 24.8 days). The bouncer holds a
// longer ban for the limit and refreshes it before it runs out.
type TimeoutCapper interface {
	MaxTimeout() time.Duration
}

func maxTimeout(b Backend) time.Duration {
	if c, ok := b.(TimeoutCapper); ok {
		return c.MaxTimeout()
	}
	return 0
}

// Counters are a backend's drop counters, for metrics.
type Counters struct {
	Packets uint64
	Bytes   uint64
}

// DropKey says whose drops a Counters holds: an origin, in one address
// family ("ipv4" or "ipv6", the ip_type label of LAPI's usage metrics).
type DropKey struct {
	Origin string
	IPType string
}

// CounterReader is implemented by backends that count dropped traffic.
// The kernel counters restart from zero when the objects are rebuilt (the
// bouncer carries them over).
type CounterReader interface {
	Dropped(ctx context.Context) (map[DropKey]Counters, error)
}

// ErrNotLoaded is returned by Lookup when our kernel objects do not exist:
// the bouncer is not running (or removed them when it stopped).
var ErrNotLoaded = errors.New("not loaded")

// Match is one element of ours that holds an address.
type Match struct {
	Set    string
	Prefix netip.Prefix
	// Origin is the origin whose set holds the element, when the kernel
	// objects say it (empty otherwise).
	Origin string
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

// CutOrigin fits an origin into a kernel comment of at most n bytes (the
// kernel refuses longer ones, and a refused set fails the whole batch)
// without splitting a character, so that what is read back is still valid
// UTF-8 for metric labels. Real origins are far shorter.
func CutOrigin(origin string, n int) string {
	origin = strings.ToValidUTF8(origin, "?")
	if len(origin) <= n {
		return origin
	}
	for n > 0 && !utf8.RuneStart(origin[n]) {
		n--
	}
	return origin[:n]
}

// Plus returns the sum of c and o.
func (c Counters) Plus(o Counters) Counters {
	return Counters{Packets: c.Packets + o.Packets, Bytes: c.Bytes + o.Bytes}
}

// Total sums counters over every origin and family.
func Total(m map[DropKey]Counters) Counters {
	var t Counters
	for _, c := range m {
		t = t.Plus(c)
	}
	return t
}
