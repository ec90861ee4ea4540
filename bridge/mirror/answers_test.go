package mirror

import (
	"io"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/crowdsecurity/crowdsec/pkg/models"
)

func do(t *testing.T, method, url, auth, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// Every answer as APIBAN words it: pages, cursors (start, future, reset),
// the end of the list, checks, bad keys, bad cursors, bad addresses,
// oversized bodies, the ipset list.
func TestAnswers(t *testing.T) {
	s := readySet(decision(5, "Ip", "203.0.113.7"), decision(7, "Range", "198.51.100.0/24"),
		decision(9, "Ip", "2001:db8::1"), decision(11, "Ip", "203.0.113.9"))
	s.Apply(&models.DecisionsStreamResponse{Deleted: []*models.Decision{decision(11, "Ip", "203.0.113.9")}})
	u := serve(t, s, Options{}).URL
	k := testKey
	full := `{"ipaddress":["203.0.113.7","198.51.100.0/24","2001:db8::1"],"ID":"1009"}`
	end := `{"ipaddress":["no new bans"],"ID":"none"}`
	cases := []struct {
		name, method, path, auth, body string
		code                           int
		want                           string
	}{
		{"no id", "GET", "/api/" + k + "/banned", "", "", 200, full},
		{"start 100", "GET", "/api/" + k + "/banned/100", "", "", 200, full},
		{"start 0", "GET", "/api/" + k + "/banned/0", "", "", 200, full},
		{"after first", "GET", "/api/" + k + "/banned/1005", "", "", 200, `{"ipaddress":["198.51.100.0/24","2001:db8::1"],"ID":"1009"}`},
		{"end", "GET", "/api/" + k + "/banned/1009", "", "", 400, end},
		{"future", "GET", "/api/" + k + "/banned/99999999", "", "", 200, full},
		{"huge", "GET", "/api/" + k + "/banned/99999999999999999999999", "", "", 200, full},
		{"bad cursor", "GET", "/api/" + k + "/banned/12ab", "", "", 400, `{"ipaddress":"invalid id","ID":"error"}`},
		{"bad key", "GET", "/api/wrong/banned/100", "", "", 403, `{"ipaddress":"none","ID":"unauthorized"}`},
		{"key prefix", "GET", "/api/" + k[:5] + "/banned/100", "", "", 403, `{"ipaddress":"none","ID":"unauthorized"}`},
		{"check listed", "GET", "/api/" + k + "/check/203.0.113.7", "", "", 200, `{"ipaddress":["203.0.113.7"],"ID":"1005"}`},
		{"check in range", "GET", "/api/" + k + "/check/198.51.100.77", "", "", 200, `{"ipaddress":["198.51.100.77"],"ID":"1007"}`},
		{"check deleted", "GET", "/api/" + k + "/check/203.0.113.9", "", "", 400, `{"ipaddress":["not blocked"],"ID":"none"}`},
		{"check bad ip", "GET", "/api/" + k + "/check/300.1.1.1", "", "", 400, `{"ipaddress":"invalid ip address","ID":"error"}`},
		{"check bad key", "GET", "/api/x/check/203.0.113.7", "", "", 403, `{"ipaddress":"none","ID":"unauthorized"}`},
		{"v2 get", "POST", "/api/get", k, `{"set":"sip","id":"100"}`, 200, full},
		{"v2 numeric id", "POST", "/api/get", k, `{"set":"all","id":1007}`, 200, `{"ipaddress":["2001:db8::1"],"ID":"1009"}`},
		{"v2 end", "POST", "/api/get", k, `{"set":"sip","id":"1009"}`, 400, end},
		{"v2 bad set", "POST", "/api/get", k, `{"set":"ssh","id":"100"}`, 400, `{"ipaddress":"invalid set","ID":"error"}`},
		{"v2 bad json", "POST", "/api/get", k, `{"set":`, 400, `{"ipaddress":"invalid json","ID":"error"}`},
		{"v2 bad id", "POST", "/api/get", k, `{"id":[1]}`, 400, `{"ipaddress":"invalid id","ID":"error"}`},
		{"v2 oversized", "POST", "/api/get", k, `{"set":"sip","id":"` + strings.Repeat("1", MaxBodyBytes) + `"}`, 400, `{"ipaddress":"request too large","ID":"error"}`},
		{"v2 no bearer", "POST", "/api/get", "", `{"set":"sip","id":"100"}`, 403, `{"ipaddress":"none","ID":"unauthorized"}`},
		{"v2 check", "POST", "/api/check", k, `{"set":"sip","ipaddress":"2001:db8::1"}`, 200, `{"ipaddress":["2001:db8::1"],"ID":"1009"}`},
		{"v2 check clean", "POST", "/api/check", k, `{"set":"sip","ipaddress":"192.0.2.2"}`, 400, `{"ipaddress":["not blocked"],"ID":"none"}`},
		{"v2 check bad ip", "POST", "/api/check", k, `{"ipaddress":"fe80::1%eth0"}`, 400, `{"ipaddress":"invalid ip address","ID":"error"}`},
		{"ipset", "GET", "/ipset/" + k + "/list", "", "", 200, "203.0.113.7\n198.51.100.0/24\n2001:db8::1\n"},
		{"ipset bad key", "GET", "/ipset/nope/list", "", "", 403, `{"ipaddress":"none","ID":"unauthorized"}`},
		{"unknown path", "GET", "/api/" + k + "/other", "", "", 404, `{"ipaddress":"not found","ID":"error"}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, body := do(t, c.method, u+c.path, c.auth, c.body)
			if code != c.code || body != c.want {
				t.Fatalf("got %d %s\nwant %d %s", code, body, c.code, c.want)
			}
		})
	}
}

// Before LAPI's first answer the mirror says 503, which APIBAN's clients
// retry with their cursor kept, rather than an empty list.
func TestNotReady(t *testing.T) {
	u := serve(t, NewSet(nil), Options{}).URL
	if code, body := do(t, "GET", u+"/api/"+testKey+"/banned/100", "", ""); code != 503 || body != `{"ipaddress":"not ready","ID":"error"}` {
		t.Fatalf("got %d %s", code, body)
	}
}

// The per-key limit answers APIBAN's 429 form, counts each key apart and
// refills with time.
func TestRateLimit(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	clock := func() time.Time { return now }
	keys := []Key{{Name: "a", Key: "key-a"}, {Name: "b", Key: "key-b"}}
	u := serve(t, readySet(decision(1, "Ip", "203.0.113.1")), Options{Keys: keys, MaxRequests: 3, RateWindow: time.Minute, Now: clock}).URL
	for i := range 3 {
		if code, _ := do(t, "GET", u+"/api/key-a/banned/100", "", ""); code != 200 {
			t.Fatalf("request %d: %d", i, code)
		}
	}
	if code, body := do(t, "GET", u+"/api/key-a/banned/100", "", ""); code != 429 || body != `{"ipaddress":"rate limit exceeded","ID":"unauthorized"}` {
		t.Fatalf("4th: %d %s", code, body)
	}
	if code, _ := do(t, "GET", u+"/api/key-b/check/203.0.113.1", "", ""); code != 200 {
		t.Fatalf("other key limited: %d", code)
	}
	now = now.Add(20 * time.Second) // one token back
	if code, _ := do(t, "GET", u+"/api/key-a/banned/100", "", ""); code != 200 {
		t.Fatalf("after refill: %d", code)
	}
}

// A filtered prefix (allowlist, never-ban set) and what is not an Ip or
// Range ban are never served; a re-listed address moves to its newest ID.
func TestSetFilters(t *testing.T) {
	allow := netip.MustParsePrefix("203.0.113.0/28")
	s := NewSet(func(p netip.Prefix) bool { return !p.Overlaps(allow) })
	captcha := decision(4, "Ip", "198.51.100.4")
	typ := "captcha"
	captcha.Type = &typ
	s.Apply(&models.DecisionsStreamResponse{New: []*models.Decision{
		decision(1, "Ip", "203.0.113.5"), decision(2, "Range", "203.0.113.0/24"), decision(3, "Country", "FR"),
		captcha, decision(5, "Ip", "not-an-ip"), decision(6, "Ip", "198.51.100.6"), decision(7, "Ip", "::ffff:198.51.100.7"),
		decision(8, "Ip", "198.51.100.6"),
	}})
	if got := strings.Join(s.All(), " "); got != "198.51.100.7 198.51.100.6" {
		t.Fatalf("served %q", got)
	}
	if id, ok := s.Find(netip.MustParseAddr("198.51.100.6")); !ok || id != "1008" {
		t.Fatalf("find: %q %v", id, ok)
	}
	s.Apply(&models.DecisionsStreamResponse{Deleted: []*models.Decision{decision(8, "Ip", "198.51.100.6")}})
	if got := strings.Join(s.All(), " "); got != "198.51.100.6 198.51.100.7" {
		t.Fatalf("after delete: %q", got)
	}
}
