package apiban

import (
	"cmp"
	"strings"
	"sync"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/source"
)

// passTracker follows one pass through the feed without the caller's
// help. A call of Next continues the pass when its cursor is the one the
// previous page returned; any other cursor starts a new pass. A pass ends
// with its last page or with an error. The tracker follows one pass at a
// time: the bridge runs one sync at a time.
type passTracker struct {
	mu    sync.Mutex
	next  string         // cursor last returned; "" when no pass is under way
	start string         // cursor the pass started from
	seen  map[string]int // cursor -> page of this pass that returned it (0: the start)
	pages int            // full pages returned in this pass
}

// begin is called before a request for the page after cursor.
func (p *passTracker) begin(cursor string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.next != "" && cursor == p.next {
		return
	}
	p.next, p.start, p.pages = "", cursor, 0
	p.seen = map[string]int{cursor: 0}
}

// reset ends the pass: after an error the caller starts again from a
// cursor it saved, which begins a new pass.
func (p *passTracker) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.next, p.seen, p.pages = "", nil, 0
}

// take records page b, the answer to a request at sent, or says why the
// pass must stop: its cursor came back (the feed cycles), went back, or
// it is one full page past maxPages. The page itself is then refused.
func (p *passTracker) take(sent string, b source.Page, maxPages int) *failure {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.seen == nil {
		p.seen = map[string]int{}
	}
	if b.Cursor != sent {
		if page, ok := p.seen[b.Cursor]; ok {
			if page == 0 {
				return newFailure(ErrBadResponse, false,
					"page ID %s is the cursor this pass started from: the feed cycles", b.Cursor)
			}
			return newFailure(ErrBadResponse, false,
				"page ID %s was already returned by page %d of this pass (started at cursor %s): the feed cycles",
				b.Cursor, page, p.start)
		}
	}
	if f := cursorMoves(sent, b); f != nil {
		return f
	}
	if b.Last {
		p.next, p.seen, p.pages = "", nil, 0
		return nil
	}
	if p.pages == maxPages {
		return newFailure(ErrBadResponse, false,
			"pass started at cursor %s is still going after %d full pages (%d entries), the limit per pass: the feed does not end",
			p.start, maxPages, maxPages*PageSize)
	}
	p.pages++
	p.seen[b.Cursor] = p.pages
	p.next = b.Cursor
	return nil
}

// cursorMoves checks that a numeric ID follows a numeric cursor sent, as
// APIBAN's (unix times of the newest entry) do: a page whose ID is not
// past the request would, once saved, make the feed go back or in
// circles. An empty page that repeats the cursor is only "nothing new",
// as some mocks answer. The end of the list keeps the cursor sent.
func cursorMoves(sent string, b source.Page) *failure {
	if !isNumber(b.Cursor) || !isNumber(sent) {
		return nil
	}
	switch c := compareNumbers(b.Cursor, sent); {
	case c > 0:
		return nil
	case c == 0 && len(b.Prefixes)+b.Invalid == 0:
		return nil
	case c == 0:
		return newFailure(ErrBadResponse, false, "page ID %s does not move past the requested cursor %s", b.Cursor, sent)
	}
	return newFailure(ErrBadResponse, false, "page ID %s is lower than the requested cursor %s: the feed went back", b.Cursor, sent)
}

// isNumber is true for a non-empty string of ASCII digits.
func isNumber(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// compareNumbers compares two digit strings of any length by value.
func compareNumbers(a, b string) int {
	a, b = strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
	if len(a) != len(b) {
		return cmp.Compare(len(a), len(b))
	}
	return strings.Compare(a, b)
}
