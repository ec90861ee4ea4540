package mirror

import (
	"bufio"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"path"
	"strings"
	"time"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/source/apiban"
)

// Key is one client key and the name metrics and logs show instead.
type Key struct {
	Name string
	Key  string
}

// Options configures the handler.
type Options struct {
	Keys []Key
	// MaxRequests per RateWindow per key; 0 turns the limit off.
	MaxRequests int
	RateWindow  time.Duration
	Metrics     *Metrics // nil: none
	Now         func() time.Time
}

// Limits of one request: APIBAN's requests are a short path, a few
// headers and a body of two short strings.
const (
	MaxBodyBytes   = 4 << 10
	MaxHeaderBytes = 8 << 10
)

// Handler answers APIBAN's API from a Set.
type Handler struct {
	set  *Set
	keys []Key
	lim  *limiter
	m    *Metrics
	mux  *http.ServeMux
	// pages keeps the encoded pages of the set's current generation:
	// clients pulling from the start ask for the same cursors.
	pages pageCache
}

// Endpoints, as metrics label them.
const (
	epV1Banned = "v1_banned"
	epV1Check  = "v1_check"
	epV2Get    = "v2_get"
	epV2Check  = "v2_check"
	epIPSet    = "ipset_list"
	epOther    = "other"
)

// NewHandler serves set to the holders of opts.Keys.
func NewHandler(set *Set, opts Options) *Handler {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	h := &Handler{set: set, keys: opts.Keys, lim: newLimiter(opts.MaxRequests, opts.RateWindow, opts.Now), m: opts.Metrics}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/{key}/banned", h.v1Banned)
	mux.HandleFunc("GET /api/{key}/banned/{id}", h.v1Banned)
	mux.HandleFunc("GET /api/{key}/check/{ip}", h.v1Check)
	mux.HandleFunc("POST /api/get", h.v2Get)
	mux.HandleFunc("POST /api/check", h.v2Check)
	mux.HandleFunc("GET /ipset/{key}/list", h.ipsetList)
	mux.HandleFunc("/", h.other)
	h.mux = mux
	return h
}

// ServeHTTP caps the body and records the answer.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	if p := r.URL.Path; p == "" || path.Clean(p) != p {
		// The mux would redirect to the cleaned path; no APIBAN
		// client needs that.
		h.other(w, r)
		return
	}
	h.mux.ServeHTTP(w, r)
}

// recorder keeps the status for the metrics.
type recorder struct {
	http.ResponseWriter
	status int
}

func (r *recorder) WriteHeader(code int) { r.status = code; r.ResponseWriter.WriteHeader(code) }

// serve runs one endpoint: the key, the rate limit, readiness, then fn.
func (h *Handler) serve(w http.ResponseWriter, ep, key string, fn func(http.ResponseWriter)) {
	rec := &recorder{ResponseWriter: w, status: http.StatusOK}
	defer func() { h.m.request(ep, rec.status) }()
	name, ok := h.lookup(key)
	switch {
	case !ok:
		writeUnauthorized(rec)
	case !h.lim.allow(name):
		h.m.client(name)
		writeRateLimited(rec)
	case !h.set.Ready():
		h.m.client(name)
		writeNotReady(rec)
	default:
		h.m.client(name)
		fn(rec)
	}
}

// lookup finds key's name, comparing every configured key in constant
// time so that the answer's timing says nothing about how close a guess
// was.
func (h *Handler) lookup(key string) (string, bool) {
	name, found := "", 0
	for _, k := range h.keys {
		if subtle.ConstantTimeCompare([]byte(k.Key), []byte(key)) == 1 {
			name, found = k.Name, 1
		}
	}
	return name, found == 1 && key != ""
}

func (h *Handler) v1Banned(w http.ResponseWriter, r *http.Request) {
	h.serve(w, epV1Banned, r.PathValue("key"), func(w http.ResponseWriter) { h.page(w, r.PathValue("id")) })
}

func (h *Handler) v1Check(w http.ResponseWriter, r *http.Request) {
	h.serve(w, epV1Check, r.PathValue("key"), func(w http.ResponseWriter) { h.check(w, r.PathValue("ip")) })
}

func (h *Handler) v2Get(w http.ResponseWriter, r *http.Request) {
	h.serve(w, epV2Get, bearer(r), func(w http.ResponseWriter) {
		req, why := ParseV2(r.Body)
		if why != "" {
			writeBadRequest(w, why)
			return
		}
		h.page(w, req.ID)
	})
}

func (h *Handler) v2Check(w http.ResponseWriter, r *http.Request) {
	h.serve(w, epV2Check, bearer(r), func(w http.ResponseWriter) {
		req, why := ParseV2(r.Body)
		if why != "" {
			writeBadRequest(w, why)
			return
		}
		h.check(w, req.IPAddress)
	})
}

// ipsetList answers the whole list, one address or range per line, as
// pfSense and OPNsense URL tables read it.
func (h *Handler) ipsetList(w http.ResponseWriter, r *http.Request) {
	h.serve(w, epIPSet, r.PathValue("key"), func(w http.ResponseWriter) {
		all := h.set.All()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		// Straight to the connection: no second copy of a list that is
		// 1.6 MB at 100,000 entries.
		bw := bufio.NewWriter(w)
		for _, s := range all {
			_, _ = bw.WriteString(s)
			_ = bw.WriteByte('\n')
		}
		_ = bw.Flush()
		h.m.served(len(all))
	})
}

func (h *Handler) other(w http.ResponseWriter, r *http.Request) {
	rec := &recorder{ResponseWriter: w, status: http.StatusNotFound}
	defer func() { h.m.request(epOther, rec.status) }()
	writeJSON(rec, http.StatusNotFound, reply{IPAddress: "not found", ID: "error"})
}

func (h *Handler) page(w http.ResponseWriter, id string) {
	cursor, ok := ParseCursor(id)
	if !ok {
		writeBadRequest(w, "invalid id")
		return
	}
	// The generation is read before the page: a page cached under it is
	// as new as that generation or newer, never older.
	gen := h.set.Generation()
	if body, n, ok := h.pages.get(gen, cursor); ok {
		writePage(w, body)
		h.m.served(n)
		return
	}
	ips, next := h.set.Page(cursor, PageSize)
	if len(ips) == 0 {
		writeEnd(w)
		return
	}
	body := pageBody(ips, next)
	h.pages.put(gen, cursor, body, len(ips))
	writePage(w, body)
	h.m.served(len(ips))
}

func (h *Handler) check(w http.ResponseWriter, ip string) {
	a, err := netip.ParseAddr(ip)
	if err != nil || a.Zone() != "" {
		writeBadRequest(w, "invalid ip address")
		return
	}
	if id, ok := h.set.Find(a); ok {
		writeListed(w, ip, id)
		return
	}
	writeNotListed(w)
}

func bearer(r *http.Request) string {
	key, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return key
}

// V2Request is the JSON body of POST /api/get and /api/check.
type V2Request struct {
	Set       string
	ID        string
	IPAddress string
}

// ParseV2 reads a v2 body: {"set":"sip","id":"100"} or
// {"set":"sip","ipaddress":"1.2.3.4"}. The set may be sip, http, all or
// absent (the mirror serves one list); the id a string or a number. It
// returns the APIBAN-style reason of a refusal, or "".
func ParseV2(body io.Reader) (V2Request, string) {
	var raw struct {
		Set       *string         `json:"set"`
		ID        json.RawMessage `json:"id"`
		IPAddress string          `json:"ipaddress"`
	}
	dec := json.NewDecoder(body)
	if err := dec.Decode(&raw); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return V2Request{}, "request too large"
		}
		return V2Request{}, "invalid json"
	}
	req := V2Request{Set: "sip", IPAddress: raw.IPAddress}
	if raw.Set != nil {
		req.Set = *raw.Set
	}
	switch req.Set {
	case "sip", "http", "all":
	default:
		return V2Request{}, "invalid set"
	}
	id, err := apiban.DecodeID(raw.ID)
	if err != nil {
		return V2Request{}, "invalid id"
	}
	req.ID = id
	return req, ""
}
