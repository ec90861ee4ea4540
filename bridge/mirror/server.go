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
	// keyBytes are the keys as constant-time comparison takes them.
	keyBytes [][]byte
	lim      *limiter
	m        *handlerMetrics
	mux      *http.ServeMux
	// pages keeps the encoded pages of the set's current generation:
	// clients pulling from the start ask for the same cursors.
	pages pageCache
}

// NewHandler serves set to the holders of opts.Keys.
func NewHandler(set *Set, opts Options) *Handler {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	h := &Handler{set: set, keys: opts.Keys, lim: newLimiter(opts.MaxRequests, opts.RateWindow, opts.Now),
		m: opts.Metrics.forHandler(opts.Keys)}
	for _, k := range opts.Keys {
		h.keyBytes = append(h.keyBytes, []byte(k.Key))
	}
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

// ServeHTTP answers one request. A path the mux would redirect to its
// cleaned form is not found instead: no APIBAN client needs that.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if p := r.URL.Path; p == "" || path.Clean(p) != p {
		h.other(w, r)
		return
	}
	h.mux.ServeHTTP(w, r)
}

// serve runs one endpoint: the key, the rate limit, readiness, then fn,
// which returns the status it answered, for the metrics.
func (h *Handler) serve(w http.ResponseWriter, ep endpoint, key string, fn func(http.ResponseWriter) int) {
	i, ok := h.lookup(key)
	var status int
	switch {
	case !ok:
		status = writeUnauthorized(w)
	case !h.lim.allow(h.keys[i].Name):
		h.m.client(i)
		status = writeRateLimited(w)
	case !h.set.Ready():
		h.m.client(i)
		status = writeNotReady(w)
	default:
		h.m.client(i)
		status = fn(w)
	}
	h.m.request(ep, status)
}

// lookup finds key's index in h.keys, comparing every configured key in
// constant time so that the answer's timing says nothing about how close
// a guess was.
func (h *Handler) lookup(key string) (int, bool) {
	// The key's bytes on the stack, as long as keys are short: no
	// allocation per request.
	var buf [64]byte
	got := append(buf[:0], key...)
	index, found := 0, 0
	for i, k := range h.keyBytes {
		if subtle.ConstantTimeCompare(k, got) == 1 {
			index, found = i, 1
		}
	}
	return index, found == 1 && key != ""
}

func (h *Handler) v1Banned(w http.ResponseWriter, r *http.Request) {
	h.serve(w, epV1Banned, r.PathValue("key"), func(w http.ResponseWriter) int { return h.page(w, r.PathValue("id")) })
}

func (h *Handler) v1Check(w http.ResponseWriter, r *http.Request) {
	h.serve(w, epV1Check, r.PathValue("key"), func(w http.ResponseWriter) int { return h.check(w, r.PathValue("ip")) })
}

func (h *Handler) v2Get(w http.ResponseWriter, r *http.Request) {
	body := http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	h.serve(w, epV2Get, bearer(r), func(w http.ResponseWriter) int {
		req, why := ParseV2(body)
		if why != "" {
			return writeBadRequest(w, why)
		}
		return h.page(w, req.ID)
	})
}

func (h *Handler) v2Check(w http.ResponseWriter, r *http.Request) {
	body := http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	h.serve(w, epV2Check, bearer(r), func(w http.ResponseWriter) int {
		req, why := ParseV2(body)
		if why != "" {
			return writeBadRequest(w, why)
		}
		return h.check(w, req.IPAddress)
	})
}

// ipsetList answers the whole list, one address or range per line, as
// pfSense and OPNsense URL tables read it.
func (h *Handler) ipsetList(w http.ResponseWriter, r *http.Request) {
	h.serve(w, epIPSet, r.PathValue("key"), func(w http.ResponseWriter) int {
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
		return http.StatusOK
	})
}

func (h *Handler) other(w http.ResponseWriter, _ *http.Request) {
	h.m.request(epOther, writeJSON(w, http.StatusNotFound, reply{IPAddress: "not found", ID: "error"}))
}

func (h *Handler) page(w http.ResponseWriter, id string) int {
	cursor, ok := ParseCursor(id)
	if !ok {
		return writeBadRequest(w, "invalid id")
	}
	// The generation is read before the page: a page cached under it is
	// as new as that generation or newer, never older.
	gen := h.set.Generation()
	p, ok := h.pages.get(gen, cursor)
	if !ok {
		ips, next := h.set.Page(cursor, PageSize)
		if len(ips) == 0 {
			return writeEnd(w)
		}
		p = newCachedPage(ips, next)
		h.pages.put(gen, cursor, p)
	}
	writePage(w, p)
	h.m.served(p.entries)
	return http.StatusOK
}

func (h *Handler) check(w http.ResponseWriter, ip string) int {
	a, err := netip.ParseAddr(ip)
	if err != nil || a.Zone() != "" {
		return writeBadRequest(w, "invalid ip address")
	}
	if id, ok := h.set.Find(a); ok {
		return writeListed(w, ip, id)
	}
	return writeNotListed(w)
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
