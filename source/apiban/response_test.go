package apiban

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestClassify(t *testing.T) {
	full := `{"ipaddress":[` + strings.TrimSuffix(strings.Repeat(`"192.0.2.1",`, BatchSize), ",") + `],"ID":"1700000249"}`
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
