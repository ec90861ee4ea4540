package lapi

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
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
		Origin: "apiban", Scenario: "s", Type: "ban", Timeout: 10 * time.Second, PerAlert: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var ds []Decision
	for i := range 500 { // about 100 KiB of JSON
		ds = append(ds, Decision{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{45, 0, byte(i >> 8), byte(i)}), 32), Duration: time.Hour})
	}
	if _, err := c.Push(context.Background(), ds, time.Now()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(encodings) != 1 || encodings[0] != "" || decoded != 1 {
		t.Fatalf("pushes with Content-Encoding %q, %d alerts decoded", encodings, decoded)
	}
}

// An answer larger than maxAnswer is an error, not a short read that
// parses as a smaller valid answer.
func TestAnswerSizeIsCapped(t *testing.T) {
	old := maxAnswer
	maxAnswer = 1 << 10
	defer func() { maxAnswer = old }()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/watchers/login" {
			_, _ = w.Write([]byte(`{"code":200,"expire":"2099-01-01T00:00:00Z","token":"t"}`))
			return
		}
		_, _ = w.Write([]byte("[" + strings.Repeat(`{"id":1},`, 1000) + `{"id":1}]`))
	}))
	defer srv.Close()
	c, err := New(Options{URL: srv.URL + "/", Login: "m", Password: "p", UserAgent: "t/1",
		Origin: "apiban", Scenario: "s", Type: "ban", Timeout: 10 * time.Second, PerAlert: 1000})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = c.Edge(context.Background(), true)
	if err == nil || !strings.Contains(err.Error(), "LAPI answer larger than 1024 bytes") {
		t.Fatalf("err %v, want the size cap named", err)
	}
}
