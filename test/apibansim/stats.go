package apibansim

import (
	"maps"
	"slices"
)

// Endpoint names a route, for per-endpoint counts.
type Endpoint string

// The simulated routes.
const (
	EndpointV1Banned Endpoint = "v1-banned" // GET /api/{KEY}/banned[/{ID}]
	EndpointV1Check  Endpoint = "v1-check"  // GET /api/{KEY}/check/{IP}
	EndpointV2Get    Endpoint = "v2-get"    // POST /api/get
	EndpointV2Check  Endpoint = "v2-check"  // POST /api/check
	EndpointOther    Endpoint = "other"     // anything else (404)
)

// Stats is a snapshot of what the Sim has served.
type Stats struct {
	// Requests counts every request received, faults included.
	Requests int
	// ByEndpoint counts requests per route.
	ByEndpoint map[Endpoint]int
	// RateLimited counts 429 answers, queued Fault429 included.
	RateLimited int
	// Unauthorized counts 403 answers.
	Unauthorized int
	// Faults counts queued faults served.
	Faults int
	// Cursors lists the ID of each list request that reached the list
	// (not faulted, refused or rate limited), in order; "" when the
	// request carried none.
	Cursors []string
}

func newStats() Stats { return Stats{ByEndpoint: map[Endpoint]int{}} }

func (st Stats) clone() Stats {
	st.ByEndpoint = maps.Clone(st.ByEndpoint)
	st.Cursors = slices.Clone(st.Cursors)
	return st
}

// Stats returns a copy of the counters.
func (s *Sim) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats.clone()
}

// Requests is Stats().Requests.
func (s *Sim) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats.Requests
}

// RateLimited is Stats().RateLimited.
func (s *Sim) RateLimited() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats.RateLimited
}

// Cursors is Stats().Cursors.
func (s *Sim) Cursors() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.stats.Cursors)
}

// ResetStats zeroes the counters; the list, faults and limit stay.
func (s *Sim) ResetStats() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats = newStats()
}
