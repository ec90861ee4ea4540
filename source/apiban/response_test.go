package apiban

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/source"
)

func TestClassify(t *testing.T) {
	full := `{"ipaddress":[` + strings.TrimSuffix(strings.Repeat(`"192.0.2.1",`, PageSize), ",") + `],"ID":"1700000249"}`
	cases := []struct {
		name   string
		status int
		body   string
		// want is "batch N next last", "end", or an error class name
		// followed by "retry" or "final".
		want string
	}{
		{"batch", 200, `{"ipaddress":["192.0.2.1","198.51.100.2"],"ID":"1664386920"}`, "batch 2 1664386920 last"},
		{"full batch", 200, full, "batch 250 1700000249 more"},
		{"full batch same cursor", 200, strings.Replace(full, "1700000249", "sent", 1), "bad final"},
		{"numeric ID", 200, `{"ipaddress":["192.0.2.1"],"ID":1664386920}`, "batch 1 1664386920 last"},
		{"lower-case id key", 200, `{"ipaddress":["192.0.2.1"],"id":"7"}`, "batch 1 7 last"},
		{"empty list", 200, `{"ipaddress":[],"ID":"7"}`, "batch 0 7 last"},
		{"non-string elements", 200, `{"ipaddress":["192.0.2.1",5,null,{"a":1}],"ID":"7"}`, "batch 1 7 last invalid 3"},
		{"end 400 array", 400, `{"ipaddress":["no new bans"],"ID":"none"}`, "end"},
		{"end 400 string", 400, `{"ipaddress":"no new bans","ID":"none"}`, "end"},
		{"end 404 array", 404, `{"ipaddress":["no new bans"],"ID":"none"}`, "end"},
		{"end 404 string", 404, `{"ipaddress":"no new bans","ID":"none"}`, "end"},
		{"end 200 ID only", 200, `{"ID":"none"}`, "end"},
		{"end 400 body without ID", 400, `{"ipaddress":"no new bans"}`, "end"},
		{"end 200 no new bans, other ID", 200, `{"ipaddress":["no new bans"],"ID":"123"}`, "end"},
		{"ID none on 410", 410, `{"ID":"none"}`, "end"},
		{"forbidden", 403, `{"ipaddress":"none","ID":"unauthorized"}`, "unauthorized final"},
		{"forbidden html", 403, `<html>`, "unauthorized final"},
		{"401", 401, ``, "unauthorized final"},
		{"429", 429, `{"ipaddress":"rate limit exceeded","ID":"unauthorized"}`, "ratelimited retry"},
		{"500 html", 500, `<html>oops</html>`, "server retry"},
		{"503 with ID none", 503, `{"ID":"none"}`, "server retry"},
		{"200 empty object", 200, `{}`, "bad retry"},
		{"200 null", 200, `null`, "bad retry"},
		{"200 empty body", 200, ``, "bad retry"},
		{"200 truncated", 200, `{"ipaddress":["192.0.2.1","198.`, "bad retry"},
		{"200 trailing garbage", 200, `{"ipaddress":[],"ID":"7"} x`, "bad retry"},
		{"200 array body", 200, `["192.0.2.1"]`, "bad retry"},
		{"200 no ID", 200, `{"ipaddress":["192.0.2.1"]}`, "bad retry"},
		{"200 no ipaddress", 200, `{"ID":"7"}`, "bad retry"},
		{"200 string ipaddress", 200, `{"ipaddress":"192.0.2.1","ID":"7"}`, "bad retry"},
		{"200 odd ipaddress", 200, `{"ipaddress":7,"ID":"7"}`, "bad retry"},
		{"200 ID with slash", 200, `{"ipaddress":[],"ID":"../x"}`, "bad retry"},
		{"200 ID object", 200, `{"ipaddress":[],"ID":{}}`, "bad retry"},
		{"400 other body", 400, `{"ipaddress":"bad request","ID":"error"}`, "bad final"},
		{"404 html", 404, `<html>not found</html>`, "bad final"},
		{"302", 302, ``, "bad final"},
		{"over-long page", 200, strings.Replace(full, `"ipaddress":[`, `"ipaddress":[7,`, 1), "bad final"},
		{"over-long end of list", 400, `{"ipaddress":[` + strings.Repeat(`"x",`, PageSize) + `"x"],"ID":"none"}`, "end"},
	}
	for _, tc := range cases {
		b, f := classify(tc.status, []byte(tc.body), "sent")
		if got := describe(b.Prefixes, b.Invalid, b.Cursor, b.Last, f); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}

func describe(prefixes any, invalid int, cursor string, last bool, f *failure) string {
	if f != nil {
		name := map[error]string{ErrUnauthorized: "unauthorized", ErrRateLimited: "ratelimited",
			ErrServer: "server", ErrBadResponse: "bad", ErrTransport: "transport"}[f.class]
		return name + map[bool]string{true: " retry", false: " final"}[f.retry]
	}
	if last && cursor == "sent" && fmt.Sprint(prefixes) == "[]" {
		return "end"
	}
	s := fmt.Sprintf("batch %d %s %s", strings.Count(fmt.Sprint(prefixes), "/"), cursor,
		map[bool]string{true: "last", false: "more"}[last])
	if invalid > 0 {
		s += fmt.Sprintf(" invalid %d", invalid)
	}
	return s
}

func TestFailureUnwrapsItsClassOnly(t *testing.T) {
	f := &failure{class: ErrServer, detail: "status 502", where: "GET x", cause: errors.New("boom")}
	if !errors.Is(f, ErrServer) || errors.Is(f, ErrTransport) {
		t.Fatal("failure does not unwrap to exactly its class")
	}
	if got := f.Error(); got != "apiban: server error: GET x: status 502: boom" {
		t.Fatalf("Error() = %q", got)
	}
}

func TestScrub(t *testing.T) {
	err := fmt.Errorf("%w: at http://h/api/k%%3Fey/x with k?ey: %w", ErrTransport, errors.New("inner k?ey"))
	got := scrub(err, []string{"k?ey", "k%3Fey"})
	if strings.Contains(got.Error(), "ey") || !errors.Is(got, ErrTransport) {
		t.Fatalf("scrub = %q", got)
	}
	for _, e := range got.(interface{ Unwrap() []error }).Unwrap() {
		if strings.Contains(e.Error(), "ey") {
			t.Fatalf("scrubbed error unwraps to %q", e)
		}
	}
	clean := errors.New("clean")
	if scrub(clean, []string{"k?ey"}) != clean {
		t.Fatal("scrub changed a clean error")
	}
}

func TestOverlongPageError(t *testing.T) {
	body := `{"ipaddress":[` + strings.TrimSuffix(strings.Repeat(`"192.0.2.1",`, 450000), ",") + `],"ID":"1700000249"}`
	_, f := classify(200, []byte(body), "100")
	want := "apiban: bad response: page of 450000 entries, more than APIBAN's 250 per page: refused whole"
	if f == nil || f.Error() != want || f.retry {
		t.Fatalf("got %v, want the final error %q", f, want)
	}
}

func TestCursorMoves(t *testing.T) {
	page := func(cursor string, entries int, last bool) source.Page {
		return source.Page{Cursor: cursor, Prefixes: make([]netip.Prefix, entries), Last: last}
	}
	cases := []struct {
		sent string
		b    source.Page
		want string // "" for no error
	}{
		{"100", page("1700000000", 250, false), ""},
		{"100", page("1700000000", 3, true), ""},
		{"1700000000", page("1700000001", 1, true), ""},
		{"1700000000", page("01700000001", 1, true), ""}, // leading zeros: by value
		{"999", page("99999999999999999999999999", 250, false), ""},
		{"sent", page("7", 250, false), ""}, // not numeric: opaque
		{"100", page("abc", 250, false), ""},
		{"2000", page("2000", 0, true), ""}, // empty page, nothing new
		{"2000", page("2000", 2, true), "page ID 2000 does not move past the requested cursor 2000"},
		{"2000", page("1999", 2, true), "page ID 1999 is lower than the requested cursor 2000: the feed went back"},
		{"2000", page("1000", 250, false), "page ID 1000 is lower than the requested cursor 2000: the feed went back"},
		{"100", page("99", 0, true), "page ID 99 is lower than the requested cursor 100: the feed went back"},
		{"100", page("0100", 1, true), "page ID 0100 does not move past the requested cursor 100"},
	}
	for _, tc := range cases {
		f := cursorMoves(tc.sent, tc.b)
		got := ""
		if f != nil {
			got = f.detail
			if f.class != ErrBadResponse || f.retry {
				t.Errorf("%s after %s: class %v retry %v, want a final bad response", tc.b.Cursor, tc.sent, f.class, f.retry)
			}
		}
		if got != tc.want {
			t.Errorf("%s after %s: got %q, want %q", tc.b.Cursor, tc.sent, got, tc.want)
		}
	}
}

func TestShownLocation(t *testing.T) {
	secrets := []string{"Sek/r3t", "Sek%2Fr3t"}
	cases := []struct{ raw, want string }{
		{"/moved/api/Sek%2Fr3t/banned/100", "/moved/api/REDACTED/banned/100"},
		{"https://u:pw@evil.example:8443/api/Sek%2fr3t/x?key=Sek/r3t#frag", "https://evil.example:8443/api/REDACTED/x"},
		{"https://evil.example/api/%53ek%2Fr3t", "https://evil.example/api/REDACTED"},
		{"http://[::1", "an unreadable location"},
		{"https://evil.example/" + strings.Repeat("a", 300), "https://evil.example/" + strings.Repeat("a", 200-len("https://evil.example/")) + "..."},
	}
	for _, tc := range cases {
		if got := shownLocation(tc.raw, secrets); got != tc.want {
			t.Errorf("shownLocation(%q) = %q, want %q", tc.raw, got, tc.want)
		}
	}
}
