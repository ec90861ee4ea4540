package apibansim

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"time"
)

func (s *Sim) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/{key}/banned", s.v1Banned)
	mux.HandleFunc("GET /api/{key}/banned/{id}", s.v1Banned)
	mux.HandleFunc("GET /api/{key}/check/{ip}", s.v1Check)
	mux.HandleFunc("POST /api/get", s.v2Get)
	mux.HandleFunc("POST /api/check", s.v2Check)
	mux.HandleFunc("/", s.other)
	return mux
}

// ServeHTTP makes the Sim usable as a plain handler too.
func (s *Sim) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// admit does what happens before any route's own work, in the order the
// real service is assumed to: count, queued fault, key, rate limit. It
// answers and returns false when the request stops there.
func (s *Sim) admit(w http.ResponseWriter, r *http.Request, ep Endpoint, key string) bool {
	s.mu.Lock()
	s.stats.Requests++
	s.stats.ByEndpoint[ep]++
	if f, ok := s.popFault(); ok && f != NoFault {
		s.stats.Faults++
		if f == Fault429 {
			s.stats.RateLimited++
		}
		s.mu.Unlock()
		s.serveFault(w, r, f)
		return false
	}
	defer s.mu.Unlock()
	if key != s.key {
		s.stats.Unauthorized++
		writeUnauthorized(w)
		return false
	}
	if !s.limiter.allow(key, time.Now()) {
		s.stats.RateLimited++
		writeRateLimited(w)
		return false
	}
	return true
}

func (s *Sim) v1Banned(w http.ResponseWriter, r *http.Request) {
	if s.admit(w, r, EndpointV1Banned, r.PathValue("key")) {
		s.serveList(w, SetSIP, r.PathValue("id"))
	}
}

func (s *Sim) v1Check(w http.ResponseWriter, r *http.Request) {
	if s.admit(w, r, EndpointV1Check, r.PathValue("key")) {
		s.serveCheck(w, SetSIP, r.PathValue("ip"))
	}
}

// v2Request is the JSON body of both v2 routes.
type v2Request struct {
	Set       string          `json:"set"`
	ID        json.RawMessage `json:"id"`
	IPAddress string          `json:"ipaddress"`
}

func (s *Sim) v2Get(w http.ResponseWriter, r *http.Request) {
	if !s.admit(w, r, EndpointV2Get, bearer(r)) {
		return
	}
	req, ok := readV2(w, r)
	if !ok {
		return
	}
	id, ok := rawID(req.ID)
	if !ok {
		writeBadRequest(w, "invalid id")
		return
	}
	s.serveList(w, req.Set, id)
}

func (s *Sim) v2Check(w http.ResponseWriter, r *http.Request) {
	if !s.admit(w, r, EndpointV2Check, bearer(r)) {
		return
	}
	if req, ok := readV2(w, r); ok {
		s.serveCheck(w, req.Set, req.IPAddress)
	}
}

func (s *Sim) other(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.stats.Requests++
	s.stats.ByEndpoint[EndpointOther]++
	f, faulted := s.popFault()
	s.mu.Unlock()
	if faulted && f != NoFault {
		s.serveFault(w, r, f)
		return
	}
	http.NotFound(w, r)
}

// serveList answers one page of set after the cursor id.
func (s *Sim) serveList(w http.ResponseWriter, set, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.Cursors = append(s.stats.Cursors, id)
	cursor, ok := parseCursor(id)
	if !ok {
		writeBadRequest(w, "invalid id")
		return
	}
	ips, last := s.list.after(set, cursor, s.pageSize)
	if len(ips) == 0 {
		writeEnd(w, s.endForm)
		return
	}
	writePage(w, ips, last)
}

func (s *Sim) serveCheck(w http.ResponseWriter, set, ip string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, listed := s.list.find(set, ip)
	writeCheck(w, ip, id, listed)
}

func bearer(r *http.Request) string {
	key, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return key
}

// readV2 decodes a v2 body; the set defaults to sip as the official
// clients always send one and nothing says what the service assumes.
func readV2(w http.ResponseWriter, r *http.Request) (v2Request, bool) {
	var req v2Request
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil {
		writeBadRequest(w, "invalid json")
		return req, false
	}
	if req.Set == "" {
		req.Set = SetSIP
	}
	if !validSet(req.Set) {
		writeBadRequest(w, "invalid set")
		return req, false
	}
	return req, true
}

// rawID accepts the id as a JSON string (what clients send) or number.
func rawID(raw json.RawMessage) (string, bool) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", true
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, true
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String(), true
	}
	return "", false
}
