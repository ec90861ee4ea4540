// Package bridge is the sync engine: it checks that LAPI still holds what
// the state file says was pushed (repairing what LAPI lost), pages through
// a feed, drops what is allowlisted or already active, pushes the rest to
// CrowdSec's LAPI and only then records the feed cursor and what was
// pushed. Crash or error at any step, and the next sync neither loses an
// address nor pushes one twice. The why is in docs/reliability.md.
package bridge

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bridge/allowlist"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bridge/lapi"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bridge/state"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/source"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/source/neverban"
)

// LAPI is what the engine needs from CrowdSec (implemented by lapi.Client).
type LAPI interface {
	Push(ctx context.Context, ds []lapi.Decision, now time.Time) (map[int64]time.Time, error)
	Active(ctx context.Context, now time.Time) (lapi.Holdings, error)
	Edge(ctx context.Context, newest bool) (id int64, found bool, err error)
	Allowlists(ctx context.Context, now time.Time) ([]allowlist.Entry, error)
}

// Options tune the engine; zero values are not defaults, the caller (cmd)
// passes validated configuration.
type Options struct {
	StatePath string
	// Duration is how long a pushed decision lasts.
	Duration time.Duration
	// RefreshBefore: a listed address whose decision ends sooner than this
	// gets a new one.
	RefreshBefore time.Duration
	// BatchSize (decisions.batch_size) is how many new decisions are
	// gathered before a push; lapi.Options.BatchSize, the same value, is
	// how many one alert carries.
	BatchSize int
	// MaxPendingAge pushes what was gathered once the oldest of it waited
	// this long, so bans start soon even when the feed is paced slowly.
	MaxPendingAge time.Duration
	// FullResyncInterval: a sync starts from the beginning of the feed when
	// the last full one is older than this (0: only on demand).
	FullResyncInterval time.Duration
	Allowlist          []netip.Prefix
	LAPIAllowlists     bool
	// NeverBan is what must never be banned (neverban.Discover: this
	// host's, its LAPI hosts', gateways' and resolvers' addresses): a
	// feed entry overlapping one is never pushed. Its special-purpose
	// ranges are the allowlist's too, which reports them as allowlisted.
	NeverBan *neverban.Set
	// MinPrefixV4 and MinPrefixV6 refuse feed prefixes wider than this
	// (fewer bits); 0 means no limit.
	MinPrefixV4, MinPrefixV6 int
	// MaxNewPerSync caps the new decisions one sync may push, and
	// MaxAddressesPerSync the addresses they cover (IPv4 addresses plus
	// IPv6 /64s); 0 means no cap. Crossing one stops the sync with
	// ErrFlood.
	MaxNewPerSync       int
	MaxAddressesPerSync uint64
	// DryRun fetches and filters but writes nothing, neither to LAPI nor
	// to the state file.
	DryRun bool
	Now    func() time.Time
	Log    logrus.FieldLogger
}

// Engine runs syncs. It is not safe for concurrent use.
type Engine struct {
	src  source.Source
	lapi LAPI
	opts Options
	st   *state.State // nil until the first sync loads it
	// readBack, when set, says why the next sync must read this origin's
	// decisions back from LAPI before anything else: LAPI may hold
	// decisions the state does not know about, or have lost some.
	readBack string
	// checkNewest alternates the per-sync check between LAPI's newest
	// and oldest alert of this origin.
	checkNewest bool
	// warnedAllowlists avoids repeating the old-LAPI warning every sync.
	warnedAllowlists bool
	// flood is the ErrFlood that tripped the cap; once set, every sync
	// fails with it and pushes nothing until the process restarts.
	flood error
	// marked: this engine wrote the push marker and it is still on disk;
	// unrecorded: a push was sent that the state file does not record
	// yet. A pass keeps one marker over all its pushes (pass.go).
	marked, unrecorded bool
}

// New builds an engine. Nothing is read until the first Sync.
func New(src source.Source, l LAPI, opts Options) *Engine {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Log == nil {
		opts.Log = logrus.StandardLogger()
	}
	if opts.MaxPendingAge == 0 {
		opts.MaxPendingAge = 5 * time.Second
	}
	return &Engine{src: src, lapi: l, opts: opts}
}

// Report counts what one sync did.
type Report struct {
	Full          bool
	Fetched       int // valid entries received
	Invalid       int // entries the feed sent that are not addresses
	Allowlisted   int
	AlreadyActive int
	Pushed        int
	TooWide       int // prefixes wider than the configured minimum, refused
	Self          int // entries naming this host or the LAPI host, refused
	// Repaired counts decisions LAPI had lost that this sync pushed again.
	Repaired int
	// ReadBack says why this sync read LAPI back ("" when it did not).
	ReadBack string
	Flood    bool
	Requests int // feed requests, when the source counts them
	Duration time.Duration
	Cursor   string
	// WouldPush lists, in a dry run, what would have been pushed.
	WouldPush []netip.Prefix
}

// Fields renders the report for one structured log line.
func (r Report) Fields() logrus.Fields {
	return logrus.Fields{
		"full": r.Full, "fetched": r.Fetched, "invalid": r.Invalid,
		"allowlisted": r.Allowlisted, "already_active": r.AlreadyActive,
		"pushed": r.Pushed, "repaired": r.Repaired, "too_wide": r.TooWide, "self": r.Self, "flood": r.Flood,
		"requests": r.Requests,
		"duration": r.Duration.Round(time.Millisecond).String(),
	}
}

// requestCounter is implemented by sources that count their HTTP requests.
type requestCounter interface{ Requests() int }

// Sync pulls the feed from the saved cursor to its end (from the start when
// full is set, when no cursor is known, or when a full resync is due).
func (e *Engine) Sync(ctx context.Context, full bool) (Report, error) {
	start := e.opts.Now()
	rep := Report{}
	reqsBefore := e.requests()
	err := e.sync(ctx, full, &rep)
	rep.Requests = e.requests() - reqsBefore
	rep.Duration = e.opts.Now().Sub(start)
	if e.st != nil {
		rep.Cursor = e.st.Cursor
	}
	return rep, err
}

func (e *Engine) requests() int {
	if c, ok := e.src.(requestCounter); ok {
		return c.Requests()
	}
	return 0
}

func (e *Engine) sync(ctx context.Context, full bool, rep *Report) error {
	if e.flood != nil {
		rep.Flood = true
		return e.flood
	}
	if err := e.loadState(); err != nil {
		return err
	}
	// Once per sync, not per write: walking 100,000 entries after every
	// push of a full sync showed in the profile.
	e.st.Prune(e.opts.Now())
	allow, err := e.allowlist(ctx)
	if err != nil {
		return err
	}
	rep.Full = full || e.st.Cursor == "" || e.fullDue()
	if err := e.verify(ctx, allow, rep); err != nil {
		return err
	}
	run := &pass{e: e, allow: allow, rep: rep, seen: newPrefixSet()}
	if !rep.Full {
		run.cursor = e.st.Cursor
	}
	if err := run.pages(ctx); err != nil {
		return err
	}
	if rep.Full {
		// A full pass journaled as much as the state holds: fold it in.
		e.st.LastFullSync = e.opts.Now()
		return e.snapshot()
	}
	return e.compact()
}

func (e *Engine) fullDue() bool {
	return e.opts.FullResyncInterval > 0 &&
		e.opts.Now().Sub(e.st.LastFullSync) >= e.opts.FullResyncInterval
}

// loadState reads the state file once. A missing file means LAPI must be
// read back; an unreadable one is moved aside (never silently overwritten)
// and treated the same way.
func (e *Engine) loadState() error {
	if e.st != nil {
		return nil
	}
	st, err := state.Load(e.opts.StatePath)
	switch {
	case err == nil:
		e.st = st
	case errors.Is(err, state.ErrNotExist):
		e.st, e.readBack = state.New(), "no state file"
	default:
		if moveErr := e.moveAside(); moveErr != nil {
			return fmt.Errorf("%w (and %w)", err, moveErr)
		}
		e.opts.Log.WithError(err).Warn("state file unreadable: moved aside")
		e.st, e.readBack = state.New(), "state file unreadable"
	}
	e.st.Clamp(e.opts.Now().Add(e.opts.Duration))
	if e.st.JournalDamaged() {
		// Never seen without the push marker (the record is written
		// before the marker goes), but what it held is not known.
		e.readBack = "the state journal ends in a damaged record"
	}
	if err == nil {
		// Only a loaded state: an empty snapshot written now would hide
		// from a crashed next start that LAPI must be read back.
		if err := e.compact(); err != nil {
			return err
		}
	}
	interrupted, err := state.PushInterrupted(e.opts.StatePath)
	if err != nil {
		return err
	}
	if interrupted {
		e.readBack = "a push to LAPI was not confirmed before the last stop"
	}
	return nil
}

func (e *Engine) moveAside() error {
	if e.opts.DryRun {
		return nil
	}
	aside := fmt.Sprintf("%s.corrupt-%d", e.opts.StatePath, e.opts.Now().Unix())
	if err := os.Rename(e.opts.StatePath, aside); err != nil {
		return fmt.Errorf("moving unreadable state file aside: %w", err)
	}
	return nil
}

func (e *Engine) allowlist(ctx context.Context) (*allowlist.Set, error) {
	set, unsupported, err := Allowlist(ctx, e.lapi, e.opts.Allowlist, e.opts.LAPIAllowlists, e.opts.Now())
	if unsupported && !e.warnedAllowlists {
		e.opts.Log.Warn("LAPI has no allowlists (before 1.6.6): only the configured allowlist applies")
		e.warnedAllowlists = true
	}
	// On an error, pushing without the operator's allowlists could ban a
	// trunk: the caller stops.
	return set, err
}

// AllowlistLister reads LAPI's allowlists.
type AllowlistLister interface {
	Allowlists(ctx context.Context, now time.Time) ([]allowlist.Entry, error)
}

// Allowlist is what the bridge never pushes: the configured prefixes and,
// with lapiLists, LAPI's allowlists. A LAPI without allowlists (before
// 1.6.6) adds none and is no error; unsupported says so. The engine and
// the check command both build it here.
func Allowlist(ctx context.Context, l AllowlistLister, configured []netip.Prefix, lapiLists bool, now time.Time) (set *allowlist.Set, unsupported bool, err error) {
	if !lapiLists {
		return allowlist.New(configured, nil), false, nil
	}
	entries, err := l.Allowlists(ctx, now)
	if errors.Is(err, lapi.ErrAllowlistsUnsupported) {
		return allowlist.New(configured, nil), true, nil
	}
	if err != nil {
		return nil, false, err
	}
	return allowlist.New(configured, entries), false, nil
}

// record appends what the last push changed to the state's journal.
func (e *Engine) record() error {
	if e.opts.DryRun {
		return nil
	}
	if err := e.st.Append(e.opts.StatePath); err != nil {
		return err
	}
	e.unrecorded = false
	return nil
}

// endPush clears the push marker: every push is recorded.
func (e *Engine) endPush() error {
	if err := state.EndPush(e.opts.StatePath); err != nil {
		return err
	}
	e.marked, e.unrecorded = false, false
	return nil
}

// snapshot writes the whole state: after a full pass or a read-back.
func (e *Engine) snapshot() error {
	if e.opts.DryRun {
		return nil
	}
	return e.st.Save(e.opts.StatePath)
}

// compact folds the journal into a new snapshot once it has grown past
// its share of the state (bridge/state), at start and after each sync.
func (e *Engine) compact() error {
	if e.opts.DryRun {
		return nil
	}
	_, err := e.st.Compact(e.opts.StatePath)
	return err
}
