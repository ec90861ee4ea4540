package bouncer

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/crowdsecurity/crowdsec/pkg/models"
	csbouncer "github.com/crowdsecurity/go-cs-bouncer"
)

// StreamOptions says how to read LAPI's decision stream: plain values, so
// that every reader of the stream (this bouncer, the APIBAN-compatible
// mirror) sets it up the same way with its own key.
type StreamOptions struct {
	APIURL             string
	APIKey             string
	CertPath           string
	KeyPath            string
	CACertPath         string
	InsecureSkipVerify bool
	UpdateFrequency    time.Duration
	// Origins filters decisions by origin; empty means every origin.
	Origins   []string
	UserAgent string
}

// OpenStream returns an initialised go-cs-bouncer StreamBouncer for Ip and
// Range decisions: Run(ctx) sends LAPI's answers on its Stream channel
// (the full list first, then deltas). It waits for LAPI at start rather
// than failing, since the bridge may start before it.
func OpenStream(o StreamOptions) (*csbouncer.StreamBouncer, error) {
	skip := o.InsecureSkipVerify
	sb := &csbouncer.StreamBouncer{
		APIKey: o.APIKey, APIUrl: o.APIURL,
		CertPath: o.CertPath, KeyPath: o.KeyPath, CAPath: o.CACertPath,
		InsecureSkipVerify: &skip, RetryInitialConnect: true,
		TickerInterval: o.UpdateFrequency.String(),
		Scopes:         []string{"ip", "range"},
		UserAgent:      o.UserAgent,
	}
	if len(o.Origins) > 0 {
		sb.Origins = o.Origins
	}
	if err := sb.Init(); err != nil {
		return nil, fmt.Errorf("decision stream: %w", err)
	}
	// go-cs-bouncer's client has no timeout and its polls a context that
	// only ends with the reader: a LAPI that accepts the connection and
	// never answers would stop the stream for good.
	sb.APIClient.GetClient().Timeout = StreamTimeout(o.UpdateFrequency)
	return sb, nil
}

// StreamTimeout bounds one request of the stream: long enough for LAPI's
// whole list (about 20 MB at 100,000 decisions), and never shorter than
// two polls.
func StreamTimeout(updateFrequency time.Duration) time.Duration {
	return max(2*updateFrequency, 2*time.Minute)
}

// ReadStream is what every reader of LAPI's stream runs: it opens the
// stream with o, then follows it (afresh every resync, 0: never) while
// consume takes its answers, until ctx ends or the stream fails; opened,
// if not nil, runs first with the open stream (the bouncer's usage
// metrics). Errors are prefixed with reader.
func ReadStream(ctx context.Context, o StreamOptions, resync time.Duration, reader string,
	opened func(context.Context, *csbouncer.StreamBouncer) error,
	consume func(context.Context, <-chan Answer) error) error {
	sb, err := OpenStream(o)
	if err != nil {
		return fmt.Errorf("%s: %w", reader, err)
	}
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	if opened != nil {
		if err := opened(ctx, sb); err != nil {
			return fmt.Errorf("%s: %w", reader, err)
		}
	}
	answers := make(chan Answer)
	runErr := make(chan error, 1)
	go func() {
		defer close(answers) // ends consume when the stream fails
		runErr <- Follow(ctx, sb, resync, answers)
	}()
	err = consume(ctx, answers)
	stop()
	if serr := <-runErr; err == nil && serr != nil {
		err = fmt.Errorf("%s: stream: %w", reader, serr)
	}
	return err
}

// Answer is one answer of LAPI's decision stream. Full marks LAPI's whole
// active list (the first answer of a stream): the reader replaces what it
// holds with it rather than applying it as a delta.
type Answer struct {
	*models.DecisionsStreamResponse
	Full bool
}

// Follow runs sb's stream until ctx ends, sending each answer on out.
// About every resync (0: never) it starts the stream afresh, so that its
// first answer is again LAPI's whole active list: the repair for the
// deltas a reader missed or that LAPI never sent (docs/bouncer.md,
// "Resync"). sb is stopped before each restart, so no delta of the old
// stream arrives after the new full list.
func Follow(ctx context.Context, sb *csbouncer.StreamBouncer, resync time.Duration, out chan<- Answer) error {
	s := resyncSchedule{interval: resync, poll: sb.TickerIntervalDuration, draw: rand.Float64}
	for {
		again, err := followOnce(ctx, sb, s.next(), out)
		if !again {
			return err
		}
	}
}

// resyncSpread is the share of the interval a resync may fall early or
// late (docs/bouncer.md, "Resync").
const resyncSpread = 0.1

// resyncSchedule says how long each stream runs before its resync.
type resyncSchedule struct {
	interval time.Duration // 0: never
	poll     time.Duration // the stream's update frequency
	// draw returns a number in [0, 1): math/rand/v2's, seeded apart in
	// each process, so that each host draws its own.
	draw func() float64
}

// next is the interval moved by up to resyncSpread of it either way,
// drawn afresh for each resync, the first included: readers started
// together (a site's PBX after a reboot or a configuration push) spread
// their full pulls instead of asking LAPI at the same moments. It is then
// put halfway between two polls, when such a moment lies within the
// spread: the stream polls on a ticker started with it, and stopping it
// as a poll is due would cut that request (go-cs-bouncer logs the cut
// request as an error). 0 means never.
func (s resyncSchedule) next() time.Duration {
	if s.interval <= 0 {
		return 0
	}
	spread := time.Duration(float64(s.interval) * resyncSpread)
	lo, hi := s.interval-spread, s.interval+spread
	return betweenPolls(lo+time.Duration(s.draw()*float64(hi-lo)), lo, hi, s.poll)
}

// betweenPolls moves d, in [lo, hi], to the nearest moment halfway
// between two polls that is also in [lo, hi]; with none (a poll longer
// than the spread), d stays.
func betweenPolls(d, lo, hi, poll time.Duration) time.Duration {
	if poll <= 0 {
		return d
	}
	slot := d/poll*poll + poll/2
	for _, c := range []time.Duration{slot, slot - poll, slot + poll} {
		if c >= lo && c <= hi && (c-d).Abs() <= poll {
			return c
		}
	}
	return d
}

// followOnce runs one stream until ctx ends (again false) or, after
// resync (0: never), its resync is due (again true).
func followOnce(ctx context.Context, sb *csbouncer.StreamBouncer, resync time.Duration, out chan<- Answer) (bool, error) {
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	runErr := make(chan error, 1)
	go func() { runErr <- sb.Run(runCtx) }()
	var due <-chan time.Time
	if resync > 0 {
		t := time.NewTimer(resync)
		defer t.Stop()
		due = t.C
	}
	full := true
	for {
		select {
		case <-ctx.Done():
			stop()
			return false, quiet(<-runErr)
		case <-due:
			stop()
			if err := quiet(<-runErr); err != nil {
				return false, err
			}
			return true, nil
		case err := <-runErr:
			if ctx.Err() != nil {
				return false, quiet(err) // asked to stop: the select may see the stream end first
			}
			if err = quiet(err); err == nil {
				err = errors.New("decision stream ended")
			}
			return false, err
		case resp, ok := <-sb.Stream:
			if !ok {
				err := quiet(<-runErr)
				if ctx.Err() != nil {
					return false, err
				}
				if err != nil {
					return false, fmt.Errorf("decision stream closed: %w", err)
				}
				return false, errors.New("decision stream closed")
			}
			select {
			case out <- Answer{DecisionsStreamResponse: resp, Full: full}:
			case <-ctx.Done():
				stop()
				return false, quiet(<-runErr)
			}
			full = false
		}
	}
}

// quiet drops the cancellation error a stopped stream returns.
func quiet(err error) error {
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// Consume hands each answer to apply, with first set for the stream's
// first, until ctx ends (nil) or answers closes (an error naming reader):
// the loop every reader of the stream runs.
func Consume(ctx context.Context, answers <-chan Answer, reader string, apply func(a Answer, first bool)) error {
	first := true
	for {
		select {
		case <-ctx.Done():
			return nil
		case a, ok := <-answers:
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				return errors.New(reader + ": decision stream closed")
			}
			apply(a, first)
			first = false
		}
	}
}
