package faults

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"testing"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/apibansim"
)

// action is what the proxy does with one alert push (POST /v1/alerts).
type action int

const (
	// answer500 answers 500 without forwarding: LAPI refused the push.
	answer500 action = iota + 1
	// loseAnswer forwards the push, lets LAPI store it, then drops the
	// connection: the bridge cannot know that the push happened.
	loseAnswer
	// goDown forwards nothing from this push on: every request, logins
	// included, gets its connection dropped until up() is called.
	goDown
)

// lapiProxy sits on loopback in front of the real LAPI and injects faults
// that a stopped LAPI cannot produce, above all "pushed but the answer
// was lost".
type lapiProxy struct {
	srv *httptest.Server
	rp  *httputil.ReverseProxy

	mu     sync.Mutex
	plan   []action // one per upcoming push, in order
	down   bool
	pushes int // alert pushes seen
	served map[action]int
}

func newProxy(t *testing.T, lapiURL string) *lapiProxy {
	t.Helper()
	target, err := url.Parse(lapiURL)
	if err != nil {
		t.Fatal(err)
	}
	p := &lapiProxy{rp: httputil.NewSingleHostReverseProxy(target), served: map[action]int{}}
	p.srv = httptest.NewServer(p)
	t.Cleanup(p.srv.Close)
	return p
}

// URL is the proxy's base URL, with the trailing slash apiclient wants.
func (p *lapiProxy) URL() string { return p.srv.URL + "/" }

// next queues actions for the coming alert pushes.
func (p *lapiProxy) next(as ...action) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.plan = append(p.plan, as...)
}

func (p *lapiProxy) up() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = false
}

func (p *lapiProxy) isDown() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.down
}

func (p *lapiProxy) count(a action) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.served[a]
}

// take returns the action for this request (0: forward as is).
func (p *lapiProxy) take(r *http.Request) action {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down {
		return goDown
	}
	if r.Method != http.MethodPost || r.URL.Path != "/v1/alerts" {
		return 0
	}
	p.pushes++
	if len(p.plan) == 0 {
		return 0
	}
	a := p.plan[0]
	p.plan = p.plan[1:]
	p.served[a]++
	if a == goDown {
		p.down = true
	}
	return a
}

func (p *lapiProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Bodies go to LAPI uncompressed, so that every LAPI version takes a
	// push at its first try and the plan counts one request per push (a
	// LAPI before 1.5 would refuse the gzip one and the client resend it:
	// that is bridge/lapi's own test, not this suite's).
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		plain, err := io.ReadAll(zr)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Header.Del("Content-Encoding")
		r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(plain)), int64(len(plain))
	}
	switch p.take(r) {
	case answer500:
		http.Error(w, `{"message":"injected failure"}`, http.StatusInternalServerError)
	case loseAnswer:
		rec := httptest.NewRecorder()
		p.rp.ServeHTTP(rec, r)
		apibansim.ResetConn(w)
	case goDown:
		apibansim.ResetConn(w)
	default:
		p.rp.ServeHTTP(w, r)
	}
}
