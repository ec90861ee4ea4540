package bridge

import (
	"context"
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bridge/allowlist"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bridge/lapi"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bridge/state"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/source"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/source/neverban"
)

// pass is one walk through the feed. It gathers new prefixes across pages
// and pushes them in groups; the cursor only moves once a group is in LAPI.
type pass struct {
	e     *Engine
	allow *allowlist.Set
	rep   *Report
	seen  prefixSet // already handled in this pass

	cursor       string // cursor of the last page fetched
	committed    string // cursor saved in the state file
	pending      []netip.Prefix
	pendingSince time.Time
	covered      uint64 // addresses pushed in this pass (see addresses)
}

// pages walks the feed. The push marker written before its first push
// stays on over all of them and is cleared at the end, once the last
// push is recorded: each push then costs one durable write (its journal
// record) instead of three (docs/reliability.md). A crash between two
// pushes leaves the marker, and the next run reads LAPI back, which is
// what a crash during a push does anyway.
func (p *pass) pages(ctx context.Context) error {
	err := p.walk(ctx)
	if !p.e.marked || p.e.unrecorded {
		return err // a push the state does not record: the marker stays
	}
	if cerr := p.e.endPush(); err == nil {
		err = cerr
	}
	return err
}

func (p *pass) walk(ctx context.Context) error {
	p.committed = p.e.st.Cursor
	for {
		b, err := p.e.src.Next(ctx, p.cursor)
		if err != nil {
			// Keep what earlier pages gathered: push it and save its cursor.
			if ferr := p.commit(ctx); ferr != nil {
				p.e.opts.Log.WithError(ferr).Error("push of gathered decisions failed")
			}
			return err
		}
		p.take(b)
		if b.Last || len(p.pending) >= p.e.opts.BatchSize ||
			(len(p.pending) > 0 && p.e.opts.Now().Sub(p.pendingSince) >= p.e.opts.MaxPendingAge) {
			if err := p.commit(ctx); err != nil {
				return err
			}
		}
		if b.Last {
			return nil
		}
	}
}

// take filters one page into pending.
func (p *pass) take(b source.Page) {
	p.cursor = b.Cursor
	p.rep.Invalid += b.Invalid
	p.rep.Fetched += len(b.Prefixes)
	now := p.e.opts.Now()
	for _, pfx := range b.Prefixes {
		if !p.seen.add(pfx) {
			continue
		}
		if p.refused(pfx) {
			continue
		}
		if reason, detail, ok := p.allow.Match(pfx); ok {
			p.rep.Allowlisted++
			p.e.opts.Log.WithFields(logrus.Fields{"prefix": pfx, "reason": reason, "match": detail}).Info("allowlisted: not pushed")
			continue
		}
		if p.e.st.ActiveAt(pfx, now.Add(p.e.opts.RefreshBefore)) {
			p.rep.AlreadyActive++
			continue
		}
		if len(p.pending) == 0 {
			p.pendingSince = now
		}
		p.pending = append(p.pending, pfx)
	}
}

// refused applies the poisoned-feed guards: a prefix wider than the
// configured minimum, or one that would ban this host or its LAPI.
func (p *pass) refused(pfx netip.Prefix) bool {
	o := &p.e.opts
	if o.tooWide(pfx) {
		p.rep.TooWide++
		o.Log.WithFields(logrus.Fields{"prefix": pfx, "min_v4": o.MinPrefixV4, "min_v6": o.MinPrefixV6}).
			Warn("prefix wider than decisions.min_prefix_v4/v6: refused")
		return true
	}
	// A special-purpose range is left to the allowlist, which counts it.
	if reason, match, hit := o.NeverBan.Match(pfx); hit && reason != neverban.ReasonSpecial {
		p.rep.Self++
		o.Log.WithFields(logrus.Fields{"prefix": pfx, "match": match, "reason": reason}).
			Warn("feed lists an address of this host, its LAPI, a gateway or a resolver: refused")
		return true
	}
	return false
}

// neverBan reports whether p must never be banned.
func (e *Engine) neverBan(p netip.Prefix) bool {
	_, _, hit := e.opts.NeverBan.Match(p)
	return hit
}

// commit pushes pending and then records it with the cursor that covers
// it. The marker written before the push makes the next run read LAPI back
// if the answer is lost, so a retry never doubles a decision; pages
// clears it.
func (p *pass) commit(ctx context.Context) error {
	e := p.e
	if e.opts.DryRun {
		p.rep.WouldPush = append(p.rep.WouldPush, p.pending...)
		p.pending = p.pending[:0]
		e.st.Cursor = p.cursor
		return nil
	}
	if err := p.checkCap(); err != nil {
		return err
	}
	if len(p.pending) > 0 {
		if err := e.push(ctx, p.decisions()); err != nil {
			return err
		}
		p.rep.Pushed += len(p.pending)
	}
	if p.cursor == p.committed && len(p.pending) == 0 {
		return nil
	}
	e.st.Cursor = p.cursor
	p.pending = p.pending[:0]
	if err := e.record(); err != nil {
		return err
	}
	p.committed = p.cursor
	return nil
}

// checkCap trips the flood guard before a push that would take this sync
// past MaxNewPerSync or MaxAddressesPerSync: that push is not made and the
// cursor stays put.
func (p *pass) checkCap() error {
	o := &p.e.opts
	covered := p.covered
	for _, pfx := range p.pending {
		covered = satAdd(covered, addresses(pfx))
	}
	var err error
	switch {
	case o.MaxNewPerSync > 0 && p.rep.Pushed+len(p.pending) > o.MaxNewPerSync:
		err = floodError(p.rep.Pushed, len(p.pending), o.MaxNewPerSync)
	case o.MaxAddressesPerSync > 0 && covered > o.MaxAddressesPerSync:
		err = addressFloodError(covered, o.MaxAddressesPerSync)
	default:
		p.covered = covered
		return nil
	}
	p.e.flood = err
	p.rep.Flood = true
	p.pending = p.pending[:0]
	return err
}

// decisions gives every pending prefix the configured duration.
func (p *pass) decisions() []lapi.Decision {
	ds := make([]lapi.Decision, len(p.pending))
	for i, pfx := range p.pending {
		ds[i] = lapi.Decision{Prefix: pfx, Duration: p.e.opts.Duration}
	}
	return ds
}

// push sends ds to LAPI between a push marker and the state's record of
// it: the decisions' ends and the alerts that carry them.
func (e *Engine) push(ctx context.Context, ds []lapi.Decision) error {
	if !e.marked {
		if err := state.BeginPush(e.opts.StatePath); err != nil {
			return err
		}
		e.marked = true
	}
	e.unrecorded = true
	now := e.opts.Now()
	alerts, err := e.lapi.Push(ctx, ds, now)
	if err != nil {
		e.readBack = "the outcome of a push is unknown" // read LAPI back next time
		return err
	}
	for _, d := range ds {
		e.st.Add(d.Prefix, now.Add(d.Duration))
	}
	for id, until := range alerts {
		e.st.AddAlert(id, until)
	}
	return nil
}

// prefixSet is a set of prefixes. A full pass of 1,000,000 addresses
// keeps every one: a single IPv4 address is held as its 4 bytes, any other
// IPv4 prefix as one integer (address and length), not as a 32-byte
// netip.Prefix. (A map[uint64]struct{} costs as much as a
// map[uint64]int64: Go pads the empty value to 8 bytes; a
// map[uint32]struct{} half that, about 20 MB at 1,000,000.)
type prefixSet struct {
	single map[uint32]struct{}
	v4     map[uint64]struct{}
	other  map[netip.Prefix]struct{}
}

func newPrefixSet() prefixSet {
	return prefixSet{single: make(map[uint32]struct{}), v4: make(map[uint64]struct{}), other: make(map[netip.Prefix]struct{})}
}

// add reports whether p was new.
func (s prefixSet) add(p netip.Prefix) bool {
	if a := p.Addr(); a.Is4() && p.IsValid() {
		b := a.As4()
		addr := binary.BigEndian.Uint32(b[:])
		if p.Bits() == 32 {
			return addNew(s.single, addr)
		}
		return addNew(s.v4, uint64(addr)<<8|uint64(p.Bits()))
	}
	return addNew(s.other, p)
}

func addNew[K comparable](m map[K]struct{}, k K) bool {
	if _, ok := m[k]; ok {
		return false
	}
	m[k] = struct{}{}
	return true
}
