package lapi

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// A push big enough for pkg/apiclient to gzip (over 5 KiB) reaches LAPI as
// plain JSON, as LAPI 1.4.6 needs.
func TestPushBodiesAreSentUncompressed(t *testing.T) {
	var mu sync.Mutex
	var encodings []string
	var decoded int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/watchers/login":
			_ = json.NewEncoder(w).Encode(map[string]any{"code": 200, "token": "t", "expire": time.Now().Add(time.Hour).Format(time.RFC3339)})
		case "/v1/alerts":
			body, _ := io.ReadAll(r.Body)
			var alerts []json.RawMessage
			err := json.Unmarshal(body, &alerts)
			mu.Lock()
			encodings = append(encodings, r.Header.Get("Content-Encoding"))
			if err == nil {
				decoded += len(alerts)
			}
			mu.Unlock()
			if err != nil {
				http.Error(w, `{"message":"`+err.Error()+`"}`, http.StatusInternalServerError)
				return
			}
			_, _ = w.Write([]byte(`["1"]`))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	c, err := New(Options{URL: srv.URL + "/", Login: "m", Password: "p", UserAgent: "t/1",
		Origin: "apiban", Scenario: "s", Type: "ban", Duration: time.Hour, PerAlert: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var ps []netip.Prefix
	for i := range 500 { // about 100 KiB of JSON
		ps = append(ps, netip.PrefixFrom(netip.AddrFrom4([4]byte{45, 0, byte(i >> 8), byte(i)}), 32))
	}
	if err := c.Push(context.Background(), ps, time.Now()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(encodings) != 1 || encodings[0] != "" || decoded != 1 {
		t.Fatalf("pushes with Content-Encoding %q, %d alerts decoded", encodings, decoded)
	}
}
