package apiban

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// FuzzParseEntry lives in parse_test.go; its extra seeds are in
// testdata/fuzz/FuzzParseEntry.

// FuzzClassify: any status and body yield a batch or a failure, never a
// panic; a batch holds only canonical prefixes, a usable cursor, at most
// a page of entries, and a full batch always moves the cursor (else the
// caller would loop).
func FuzzClassify(f *testing.F) {
	seeds := []struct {
		status int
		body   string
	}{
		{200, `{"ipaddress":["192.0.2.1","198.51.100.7"],"ID":"1664386920"}`},
		{400, `{"ipaddress":["no new bans"],"ID":"none"}`},
		{404, `{"ipaddress":"no new bans","ID":"none"}`},
		{200, `{"ID":"none"}`},
		{403, `{"ipaddress":"none","ID":"unauthorized"}`},
		{429, `{"ipaddress":"rate limit exceeded","ID":"unauthorized"}`},
		{502, `<html><body>bad gateway</body></html>`},
		{200, `{}`},
		{200, ``},
		{200, `{"ipaddress":["192.0.2.1","198.51.100.`},
		{200, `{"ipaddress": [192.0.2.1], ID: none`},
		{200, `{"ipaddress":[1,null,{"a":1},"2001:db8::1"],"ID":1700000001}`},
		{200, `{"ipaddress":["0.0.0.0/0"],"ID":"../../x"}`},
		{200, `[]`},
		{200, `null`},
		{200, `{"ipaddress":[` + strings.Repeat(`"192.0.2.1",`, PageSize) + `"192.0.2.2"],"ID":"1700000001"}`},
		{302, `{"ipaddress":["192.0.2.1"],"ID":"1700000001"}`},
	}
	for _, s := range seeds {
		f.Add(s.status, []byte(s.body), "100")
	}
	f.Fuzz(func(t *testing.T, status int, body []byte, sent string) {
		b, fail := classify(status, body, sent)
		if fail != nil {
			if fail.Error() == "" {
				t.Fatal("failure without a message")
			}
			return
		}
		if status == 401 || status == 403 || status == 429 || status >= 500 {
			t.Fatalf("status %d classified as a batch", status)
		}
		for _, p := range b.Prefixes {
			if !p.IsValid() || p != p.Masked() || p.Bits() == 0 || p.Addr().Is4In6() {
				t.Fatalf("non-canonical prefix %v in a batch", p)
			}
		}
		if b.Cursor != sent && !validCursor(b.Cursor) {
			t.Fatalf("unusable cursor %q", b.Cursor)
		}
		if !b.Last && b.Cursor == sent {
			t.Fatalf("a batch that is not the last keeps cursor %q", sent)
		}
		if n := len(b.Prefixes) + b.Invalid; n > PageSize {
			t.Fatalf("a batch of %d entries, more than a page", n)
		}
	})
}

// FuzzClientResponse drives the whole client (HTTP, size cap, decoding,
// pass bounds, error wording) with arbitrary bodies: never a panic, never
// the key in an error, only canonical prefixes out, never more than a
// page, never a cursor that goes back, never a page from a 3xx.
func FuzzClientResponse(f *testing.F) {
	const key = "FuzzSecretKey-3c4d5e"
	var mu sync.Mutex
	var status int
	var body []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		s, b := status, body
		mu.Unlock()
		w.WriteHeader(s)
		_, _ = w.Write(b)
	}))
	f.Cleanup(srv.Close)
	for _, s := range []string{
		`{"ipaddress":["192.0.2.1"],"ID":"1700000001"}`, `{"ipaddress":["no new bans"],"ID":"none"}`,
		`{}`, ``, `<html>oops</html>`, `{"ipaddress":"` + key + `","ID":"` + key + `"}`,
		`{"ipaddress":["192.0.2.1"],"ID":"99"}`, `{"ipaddress":["192.0.2.1"],"ID":"100"}`,
		`{"ipaddress":[` + strings.Repeat(`"192.0.2.1",`, PageSize) + `"192.0.2.2"],"ID":"1700000001"}`,
	} {
		f.Add(200, []byte(s), false)
	}
	f.Add(400, []byte(`{"ipaddress":["no new bans"],"ID":"none"}`), true)
	f.Add(302, []byte(`{"ipaddress":["192.0.2.1"],"ID":"1700000001"}`), true)
	f.Fuzz(func(t *testing.T, st int, b []byte, v1 bool) {
		if st < 200 || st > 599 {
			st = 200 + (st%400+400)%400 // net/http refuses other codes
		}
		mu.Lock()
		status, body = st, b
		mu.Unlock()
		version := "v2"
		if v1 {
			version = "v1"
		}
		c, err := New(Config{BaseURL: srv.URL, APIKey: key, Version: version, Set: "sip",
			MaxRetries: 0, Timeout: 5 * time.Second, RateWindow: time.Minute, MaxPages: 400, MaxBodyBytes: 1 << 16})
		if err != nil {
			t.Fatal(err)
		}
		batch, err := c.Next(context.Background(), "100")
		if err != nil {
			if strings.Contains(err.Error(), key) {
				t.Fatalf("the key leaked into an error: %v", err)
			}
			return
		}
		if strings.Contains(batch.Cursor, key) {
			t.Fatalf("the key came back as the cursor")
		}
		if n := len(batch.Prefixes) + batch.Invalid; n > PageSize {
			t.Fatalf("a batch of %d entries, more than a page", n)
		}
		if isNumber(batch.Cursor) && compareNumbers(batch.Cursor, "100") < 0 {
			t.Fatalf("cursor %q went back from 100", batch.Cursor)
		}
		if st >= 300 && st < 400 && len(batch.Prefixes) > 0 {
			t.Fatalf("a %d answer gave %d prefixes", st, len(batch.Prefixes))
		}
		for _, p := range batch.Prefixes {
			if p != p.Masked() || p.Bits() == 0 || !netip.Prefix.IsValid(p) {
				t.Fatalf("non-canonical prefix %v", p)
			}
		}
	})
}
