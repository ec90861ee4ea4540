package lapi

import (
	"compress/gzip"
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

// fakeLAPI answers logins and alert POSTs; an old one reads every body as
// plain JSON, as LAPI 1.4.6 does, and refuses a gzip one with its own
// error. It records each push's Content-Encoding and how many alerts it
// stored.
func fakeLAPI(t *testing.T, old bool) (url string, pushes func() ([]string, int)) {
	var mu sync.Mutex
	var encodings []string
	stored := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/watchers/login":
			_ = json.NewEncoder(w).Encode(map[string]any{"code": 200, "token": "t", "expire": time.Now().Add(time.Hour).Format(time.RFC3339)})
		case "/v1/alerts":
			var body io.Reader = r.Body
			if !old && r.Header.Get("Content-Encoding") == "gzip" {
				zr, err := gzip.NewReader(r.Body)
				if err != nil {
					t.Error(err)
					return
				}
				body = zr
			}
			raw, _ := io.ReadAll(body)
			var alerts []json.RawMessage
			err := json.Unmarshal(raw, &alerts)
			mu.Lock()
			encodings = append(encodings, r.Header.Get("Content-Encoding"))
			if err == nil {
				stored += len(alerts)
			}
			mu.Unlock()
			if err != nil {
				w.WriteHeader(http.StatusBadRequest)
				_ = json.NewEncoder(w).Encode(map[string]string{"message": err.Error()})
				return
			}
			_, _ = w.Write([]byte(`["1"]`))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/", func() ([]string, int) {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), encodings...), stored
	}
}

// pushBig pushes a body big enough for pkg/apiclient to gzip (over 5 KiB).
func pushBig(t *testing.T, c *Client) {
	t.Helper()
	var ds []Decision
	for i := range 500 { // about 100 KiB of JSON
		ds = append(ds, Decision{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{45, 0, byte(i >> 8), byte(i)}), 32), Duration: time.Hour})
	}
	if _, err := c.Push(context.Background(), ds, time.Now()); err != nil {
		t.Fatal(err)
	}
}

// An old LAPI refuses the first gzip push, which is sent again plain, and
// gets the second plain at once; a current one keeps getting gzip. Each
// push is stored once.
func TestGzipBodiesUnlessLAPIRefusesThem(t *testing.T) {
	for _, c := range []struct {
		old  bool
		want string
	}{{true, "gzip,,"}, {false, "gzip,gzip"}} {
		url, pushes := fakeLAPI(t, c.old)
		cl, err := New(Options{URL: url, Login: "m", Password: "p", UserAgent: "t/1",
			Origin: "apiban", Scenario: "s", Type: "ban", Timeout: 10 * time.Second, BatchSize: 1000})
		if err != nil {
			t.Fatal(err)
		}
		pushBig(t, cl)
		pushBig(t, cl)
		if enc, stored := pushes(); strings.Join(enc, ",") != c.want || stored != 2 {
			t.Fatalf("old LAPI %v: pushes with Content-Encoding %q, %d alerts stored; want %q, 2 stored", c.old, enc, stored, c.want)
		}
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
		Origin: "apiban", Scenario: "s", Type: "ban", Timeout: 10 * time.Second, BatchSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = c.Edge(context.Background(), true)
	if err == nil || !strings.Contains(err.Error(), "LAPI answer larger than 1024 bytes") {
		t.Fatalf("err %v, want the size cap named", err)
	}
}

// LAPI before 1.5 refuses with_decisions=false as an unknown filter (500
// on 1.4.6): Edge asks once more without it, and from then on.
func TestEdgeWithoutWithDecisionsOnOldLAPI(t *testing.T) {
	var mu sync.Mutex
	var queries []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/watchers/login" {
			_, _ = w.Write([]byte(`{"code":200,"expire":"2099-01-01T00:00:00Z","token":"t"}`))
			return
		}
		mu.Lock()
		queries = append(queries, r.URL.Query().Get("with_decisions"))
		mu.Unlock()
		if r.URL.Query().Has("with_decisions") {
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte(`{"message":"Filter parameter 'with_decisions' is unknown (=false): invalid filter"}`))
			return
		}
		_, _ = w.Write([]byte(`[{"id":42,"decisions":[]}]`))
	}))
	defer srv.Close()
	c, err := New(Options{URL: srv.URL + "/", Login: "m", Password: "p", UserAgent: "t/1",
		Origin: "apiban", Scenario: "s", Type: "ban", Timeout: 10 * time.Second, BatchSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		id, found, err := c.Edge(context.Background(), true)
		if err != nil || !found || id != 42 {
			t.Fatalf("Edge = %d, %v, %v; want 42", id, found, err)
		}
	}
	if got := strings.Join(queries, ","); got != "false,," {
		t.Fatalf("with_decisions sent as %q, want once, then never", got)
	}
}

// readCounter is a request body that counts the bytes read from it.
type readCounter struct {
	r    io.Reader
	read int
}

func (c *readCounter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.read += n
	return n, err
}

func (c *readCounter) Close() error { return nil }

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// gzipRequest is a POST with a gzip body of plain; with again, it can
// give its body again (GetBody), as pkg/apiclient's requests can.
func gzipRequest(t *testing.T, plain string, again bool) (*http.Request, *readCounter) {
	t.Helper()
	var zipped strings.Builder
	zw := gzip.NewWriter(&zipped)
	if _, err := zw.Write([]byte(plain)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	body := &readCounter{r: strings.NewReader(zipped.String())}
	req, err := http.NewRequest(http.MethodPost, "http://lapi.invalid/v1/alerts", body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Encoding", "gzip")
	if again {
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(zipped.String())), nil }
	}
	return req, body
}

func answer(code int, body string) *http.Response {
	return &http.Response{StatusCode: code, Body: io.NopCloser(strings.NewReader(body)), Header: http.Header{}}
}

// A request that can give its body again reaches LAPI with that very
// body, unread: nothing is buffered on the way. When LAPI refuses gzip,
// the body is taken again and sent inflated; a request without GetBody
// is read first, and sent inflated all the same.
func TestGzipBodyIsBufferedOnlyWhenItCannotBeHadAgain(t *testing.T) {
	const plain = `[{"scenario":"s"}]`
	for _, c := range []struct {
		name          string
		again, refuse bool
	}{{"takes gzip", true, false}, {"refuses gzip", true, true}, {"refuses gzip, no GetBody", false, true}} {
		t.Run(c.name, func(t *testing.T) {
			req, body := gzipRequest(t, plain, c.again)
			var sent []string
			g := &gzipFallback{next: roundTripFunc(func(r *http.Request) (*http.Response, error) {
				if len(sent) == 0 && c.again && (r.Body != io.ReadCloser(body) || body.read != 0) {
					t.Errorf("the first try got another body, or one already read (%d bytes)", body.read)
				}
				raw, err := io.ReadAll(r.Body)
				if err != nil {
					t.Fatal(err)
				}
				enc := r.Header.Get("Content-Encoding")
				sent = append(sent, enc)
				if enc == "gzip" && c.refuse {
					return answer(http.StatusBadRequest, `{"message":"invalid character '\\x1f' looking for beginning of value"}`), nil
				}
				if enc == "" && string(raw) != plain {
					t.Errorf("plain body %q, want %q", raw, plain)
				}
				return answer(http.StatusOK, `["1"]`), nil
			})}
			resp, err := g.RoundTrip(req)
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("RoundTrip: %v, %v", resp, err)
			}
			want := "gzip"
			if c.refuse {
				want = "gzip,"
			}
			if got := strings.Join(sent, ","); got != want {
				t.Fatalf("sent with Content-Encoding %q, want %q", got, want)
			}
		})
	}
}
