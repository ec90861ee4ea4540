package bouncer

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/crowdsecurity/crowdsec/pkg/models"
	csbouncer "github.com/crowdsecurity/go-cs-bouncer"
	"github.com/sirupsen/logrus"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/source"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/source/neverban"
)

// Options configures the bouncer: how it reads LAPI's stream (the
// settings every stream reader shares), then what it enforces.
type Options struct {
	StreamOptions
	// Resync is how often the whole active list is pulled again and the
	// kernel sets rebuilt from it (0: never); docs/bouncer.md, "Resync".
	Resync time.Duration

	// NeverBan: a decision whose address or range overlaps one of its
	// entries is never enforced. A nil set still holds IANA's
	// special-purpose ranges; cmd adds this host's, its LAPI's, its
	// gateways' and its resolvers' addresses.
	NeverBan *neverban.Set
	// Allowlist: an address in (or a range overlapping) one of these
	// prefixes is never dropped.
	Allowlist []netip.Prefix
	// MinPrefixV4 and MinPrefixV6: a range wider than this (fewer bits)
	// is never enforced; 0 means no limit.
	MinPrefixV4, MinPrefixV6 int
	// KeepOnExit leaves the kernel objects in place at shutdown.
	KeepOnExit bool
	// MetricsInterval is how often usage metrics go to LAPI; 0 sends none.
	MetricsInterval time.Duration

	Log logrus.FieldLogger
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time
}

// Stats is a snapshot for metrics and logs.
type Stats struct {
	Decisions int // active ban decisions tracked
	Elements  int // elements in the kernel sets
	Skipped   int // decisions never enforced, each counted once
	// SkippedBy counts the skipped decisions by reason (neverban's
	// reasons, and not-ban, scope, malformed, expired).
	SkippedBy map[string]int
	Ticks     int // stream answers applied
	// Resyncs counts the full pulls after the first; ResyncAdded and
	// ResyncRemoved the addresses and ranges they added and removed
	// (what the stream's deltas had missed).
	Resyncs, ResyncAdded, ResyncRemoved int
	// ByOrigin counts the active decisions per origin.
	ByOrigin map[string]int
}

// Bouncer streams decisions and keeps a Backend in step.
type Bouncer struct {
	backend Backend
	opts    Options
	log     logrus.FieldLogger
	never   *neverban.Set

	// skipped holds the IDs of the decisions skipped and logged, so that
	// each is logged and counted once, however often LAPI sends it.
	skipped map[int64]bool
	// lastLoadErr is the last full load's error, logged once.
	lastLoadErr string

	tracker *tracker
	planner *planner

	mu    sync.Mutex
	stats Stats
	// loaded: this process has loaded the kernel objects at least once,
	// so their counters are its own.
	loaded bool
	// banked holds what the rules had counted before each rebuild, so that
	// the drop counters run on across rebuilds.
	banked map[DropKey]Counters
}

// New returns a bouncer driving backend.
func New(backend Backend, opts Options) *Bouncer {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Log == nil {
		l := logrus.New()
		l.SetLevel(logrus.PanicLevel)
		opts.Log = l
	}
	return &Bouncer{
		backend: backend, opts: opts, log: opts.Log,
		never:   opts.NeverBan.With(neverban.ReasonAllowlist, opts.Allowlist...),
		skipped: map[int64]bool{},
		tracker: newTracker(), planner: newPlanner(backend.Nested(), maxTimeout(backend)),
	}
}

// Stats returns the current counts.
func (b *Bouncer) Stats() Stats {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.stats
	s.ByOrigin = maps.Clone(s.ByOrigin)
	s.SkippedBy = maps.Clone(s.SkippedBy)
	return s
}

// Run streams decisions from LAPI until ctx ends, then removes the kernel
// objects (unless KeepOnExit). It waits for LAPI at start rather than
// failing, since the bridge may start before it.
func (b *Bouncer) Run(ctx context.Context) error {
	return ReadStream(ctx, b.opts.StreamOptions, b.opts.Resync, "bouncer", b.startUsage, b.RunAnswers)
}

// startUsage sends usage metrics to LAPI every MetricsInterval (0: none)
// until ctx ends.
func (b *Bouncer) startUsage(ctx context.Context, sb *csbouncer.StreamBouncer) error {
	if b.opts.MetricsInterval <= 0 {
		return nil
	}
	u := &usage{b: b}
	mp, err := csbouncer.NewMetricsProvider(sb.APIClient, "crowdsec-apiban-bridge", u.update, b.log)
	if err != nil {
		return fmt.Errorf("usage metrics: %w", err)
	}
	mp.Interval = b.opts.MetricsInterval
	go func() { _ = mp.Run(ctx) }()
	return nil
}

// RunAnswers applies each answer to the kernel until ctx ends or answers
// closes, then cleans up. A full answer (LAPI's whole list) replaces
// what the bouncer holds and rebuilds the kernel objects; each other one
// is one transaction.
func (b *Bouncer) RunAnswers(ctx context.Context, answers <-chan Answer) error {
	defer b.shutdown()
	needFull := true
	return Consume(ctx, answers, "bouncer", func(a Answer, first bool) {
		if a.Full && !first {
			needFull = b.resync(ctx, a.DecisionsStreamResponse)
			return
		}
		needFull = b.tick(ctx, a.DecisionsStreamResponse, needFull || a.Full)
	})
}

// forgetSkipsNotIn keeps the logged-once marks only of the decisions LAPI
// still holds: the ones a resync drops were never reported deleted, so
// the marks would otherwise pile up for the life of the process.
func (b *Bouncer) forgetSkipsNotIn(resp *models.DecisionsStreamResponse) {
	if len(b.skipped) == 0 {
		return // the usual case: no map of every ID LAPI holds
	}
	held := make(map[int64]bool)
	if resp != nil {
		for _, d := range resp.New {
			if d != nil {
				held[d.ID] = true
			}
		}
	}
	maps.DeleteFunc(b.skipped, func(id int64, _ bool) bool { return !held[id] })
}

// resync replaces the tracked decisions with LAPI's whole list and
// rebuilds the kernel objects from it: what LAPI deleted without telling
// the stream goes, what the stream never sent comes. It logs and counts
// what changed.
func (b *Bouncer) resync(ctx context.Context, resp *models.DecisionsStreamResponse) bool {
	before := b.tracker
	b.tracker = newTracker()
	b.forgetSkipsNotIn(resp)
	needFull := b.tick(ctx, resp, true)
	added, removed := missingFrom(b.tracker, before), missingFrom(before, b.tracker)
	b.mu.Lock()
	b.stats.Resyncs++
	b.stats.ResyncAdded += added
	b.stats.ResyncRemoved += removed
	b.mu.Unlock()
	l := b.log.WithFields(logrus.Fields{"added": added, "removed": removed, "values": b.tracker.values()})
	if added+removed > 0 {
		l.Warn("bouncer: resync with LAPI's full list changed the enforced set (the stream had missed these changes)")
	} else {
		l.Info("bouncer: resync with LAPI's full list: no change")
	}
	return needFull
}

// missingFrom counts the values of a that b does not hold.
func missingFrom(a, b *tracker) int {
	n := 0
	a.each(func(p netip.Prefix, _ want) {
		if _, ok := b.wanted(p); !ok {
			n++
		}
	})
	return n
}

// tick applies one stream answer; it returns whether the next tick must
// rebuild everything (this one failed).
func (b *Bouncer) tick(ctx context.Context, resp *models.DecisionsStreamResponse, full bool) bool {
	now := b.opts.Now()
	if resp != nil {
		b.absorb(resp, now)
	}
	b.tracker.expire(now)
	defer b.updateStats()
	if full {
		elems := b.planner.full(b.tracker, now)
		before := b.countersBeforeRebuild(ctx)
		if err := b.backend.Reconcile(ctx, elems); err != nil {
			// Once per distinct error: a refusal to touch another
			// program's objects would otherwise fill the log.
			l := b.log.WithError(err)
			if err.Error() == b.lastLoadErr {
				l.Debug("bouncer: cannot load the kernel sets; retrying at the next update")
			} else {
				l.Error("bouncer: cannot load the kernel sets; retrying at the next update")
			}
			b.lastLoadErr = err.Error()
			return true
		}
		b.lastLoadErr = ""
		b.bank(before)
		b.log.WithField("elements", len(elems)).Infof("bouncer: %s sets loaded", b.backend.Name())
		return false
	}
	ch := b.planner.plan(b.tracker, now)
	if ch.Empty() {
		return false
	}
	if err := b.backend.Apply(ctx, ch); err != nil {
		// The batch changed nothing; rebuild from the full state.
		b.log.WithError(err).Warn("bouncer: update refused by the kernel, rebuilding the sets")
		return b.tick(ctx, nil, true)
	}
	b.log.WithFields(logrus.Fields{"added": len(ch.Add), "deleted": len(ch.Delete), "refreshed": len(ch.Refresh), "renewed": len(ch.Renew),
		"elements": b.planner.size()}).Info("bouncer: kernel sets updated")
	return false
}

func (b *Bouncer) updateStats() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.stats.Decisions = b.tracker.decisions()
	b.stats.ByOrigin = b.tracker.byOrigin()
	b.stats.Elements = b.planner.size()
	b.stats.Ticks++
}

// absorb records the answer's deleted then new decisions.
func (b *Bouncer) absorb(resp *models.DecisionsStreamResponse, now time.Time) {
	for _, d := range resp.Deleted {
		if d != nil {
			b.tracker.remove(d.ID)
			delete(b.skipped, d.ID)
		}
	}
	for _, d := range resp.New {
		p, until, sk := b.accept(d, now)
		if sk != nil {
			b.skip(d, sk)
			continue
		}
		origin := ""
		if d.Origin != nil {
			origin = *d.Origin
		}
		b.tracker.add(d.ID, p, until, origin)
	}
}

// skipReason says why a decision is not enforced.
type skipReason struct {
	reason string // metric label
	detail string
	warn   bool // a ban that would have hit what must never be banned
}

// skip logs and counts a decision that is not enforced, once per decision.
func (b *Bouncer) skip(d *models.Decision, sk *skipReason) {
	var id int64
	if d != nil {
		id = d.ID
	}
	if b.skipped[id] {
		return
	}
	b.skipped[id] = true
	b.mu.Lock()
	b.stats.Skipped++
	if b.stats.SkippedBy == nil {
		b.stats.SkippedBy = map[string]int{}
	}
	b.stats.SkippedBy[sk.reason]++
	b.mu.Unlock()
	l := b.log.WithFields(logrus.Fields{"decision": id, "reason": sk.reason})
	if d != nil && d.Origin != nil {
		l = l.WithField("origin", *d.Origin)
	}
	if sk.warn {
		l.Warnf("bouncer: not enforced: %s", sk.detail)
		return
	}
	l.Infof("bouncer: not enforced: %s", sk.detail)
}

// accept returns the prefix a decision bans and when it ends, or why it
// is not enforced.
func (b *Bouncer) accept(d *models.Decision, now time.Time) (netip.Prefix, time.Time, *skipReason) {
	no := func(reason, format string, a ...any) (netip.Prefix, time.Time, *skipReason) {
		return netip.Prefix{}, time.Time{}, &skipReason{reason: reason, detail: fmt.Sprintf(format, a...)}
	}
	if d == nil || d.Type == nil || d.Scope == nil || d.Value == nil || d.Duration == nil {
		return no("malformed", "incomplete decision")
	}
	if !strings.EqualFold(*d.Type, "ban") {
		return no("not-ban", "type %q is not ban", *d.Type)
	}
	p, err := ParseValue(*d.Scope, *d.Value)
	if err != nil {
		if errors.Is(err, errScope) {
			return no("scope", "%v", err)
		}
		return no("malformed", "%v", err)
	}
	left, err := time.ParseDuration(*d.Duration)
	if err != nil {
		return no("malformed", "duration %q: %v", *d.Duration, err)
	}
	if left <= 0 {
		return no("expired", "already expired")
	}
	if sk := b.refuse(p); sk != nil {
		return netip.Prefix{}, time.Time{}, sk
	}
	return p, now.Add(left), nil
}

// refuse says why p must never be dropped: it is wider than the minimum
// prefix (checked first: such a range usually overlaps something never
// banned too, and "too wide" says more), or overlaps the never-ban list
// or the allowlist.
func (b *Bouncer) refuse(p netip.Prefix) *skipReason {
	if neverban.TooWide(p, b.opts.MinPrefixV4, b.opts.MinPrefixV6) {
		key := "bouncer.min_prefix_v4"
		if p.Addr().Is6() {
			key = "bouncer.min_prefix_v6"
		}
		return &skipReason{reason: neverban.ReasonTooWide, warn: true,
			detail: fmt.Sprintf("%s is wider than %s (/%d)", p, key, neverban.MinPrefix(p, b.opts.MinPrefixV4, b.opts.MinPrefixV6))}
	}
	if en, hit := b.never.MatchEntry(p); hit {
		what := en.Prefix.String()
		if en.Note != "" {
			what += " (" + en.Note + ")"
		}
		return &skipReason{reason: en.Reason, detail: fmt.Sprintf("%s overlaps %s, which is never banned (%s)", p, what, en.Reason), warn: true}
	}
	return nil
}

// errScope marks a decision whose scope is neither Ip nor Range.
var errScope = errors.New("scope is neither Ip nor Range")

// ParseValue turns a decision's scope and value into a prefix in the
// normal form (source.ParsePrefix): an Ip is a bare address, a Range a
// CIDR.
func ParseValue(scope, value string) (netip.Prefix, error) {
	switch strings.ToLower(scope) {
	case "ip":
		a, err := source.ParseAddr(value)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("scope Ip: bad address %q", value)
		}
		return netip.PrefixFrom(a, a.BitLen()), nil
	case "range":
		p, err := source.ParseCIDR(value)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("scope Range: bad prefix %q", value)
		}
		return p.Masked(), nil
	default:
		return netip.Prefix{}, fmt.Errorf("%w: %q", errScope, scope)
	}
}

// shutdown removes the kernel objects unless told to keep them. It runs
// after ctx ended, so it gets its own short deadline.
func (b *Bouncer) shutdown() {
	defer b.backend.Close()
	if b.opts.KeepOnExit {
		b.log.Info("bouncer: keeping the kernel objects (keep_on_exit)")
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.backend.Cleanup(ctx); err != nil {
		b.log.WithError(err).Error("bouncer: cannot remove the kernel objects")
		return
	}
	b.log.Infof("bouncer: %s objects removed", b.backend.Name())
}
