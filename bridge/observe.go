package bridge

import "github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/source"

// ActiveCount is the number of decisions the state believes active (0
// before the first sync). Like every Engine method it must not run
// concurrently with Sync: call it from RunEach's done.
func (e *Engine) ActiveCount() int {
	if e.st == nil {
		return 0
	}
	return e.st.Active.Len()
}

// Source is the feed the engine reads, for callers that export its
// counters (requests, 429s).
func (e *Engine) Source() source.Source { return e.src }
