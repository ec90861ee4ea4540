package apibansim

import (
	"encoding/json"
	"io"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

// get does one request and decodes APIBAN's reply shape.
func get(t *testing.T, s *Sim, method, path, key, body string) (int, reply) {
	t.Helper()
	req, err := http.NewRequest(method, s.URL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var r reply
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("%s %s: %d %q is not JSON: %v", method, path, resp.StatusCode, raw, err)
	}
	return resp.StatusCode, r
}

func newTestSim(t *testing.T, o Options) *Sim {
	t.Helper()
	if o.MaxRequests == 0 {
		o.MaxRequests = Unlimited
	}
	s := New(o)
	t.Cleanup(s.Close)
	return s
}

func TestStartFormsAndPaging(t *testing.T) {
	s := newTestSim(t, Options{PageSize: 2, StartID: 1010})
	s.Add("a", "b", "c")
	for _, path := range []string{"/api/sim-key/banned", "/api/sim-key/banned/0", "/api/sim-key/banned/100"} {
		if st, r := get(t, s, "GET", path, "", ""); st != 200 || r.ID != "1011" || !slices.Equal(toStrings(r.IPAddress), []string{"a", "b"}) {
			t.Errorf("%s: %d %+v, want a,b with ID 1011", path, st, r)
		}
	}
	if st, r := get(t, s, "GET", "/api/sim-key/banned/1011", "", ""); st != 200 || r.ID != "1012" || !slices.Equal(toStrings(r.IPAddress), []string{"c"}) {
		t.Errorf("after 11: %d %+v", st, r)
	}
	if st, r := get(t, s, "GET", "/api/sim-key/banned/1012", "", ""); st != 400 || r.ID != "none" {
		t.Errorf("after 12: %d %+v, want the end", st, r)
	}
	if st, r := get(t, s, "GET", "/api/sim-key/banned/abc", "", ""); st != 400 || r.ID == "none" {
		t.Errorf("bad cursor: %d %+v, want a 400 that is not an end", st, r)
	}
	if got := s.Cursors(); !slices.Equal(got, []string{"", "0", "100", "1011", "1012", "abc"}) {
		t.Errorf("cursors %q", got)
	}
}

func toStrings(v any) []string {
	var out []string
	if list, ok := v.([]any); ok {
		for _, e := range list {
			out = append(out, e.(string))
		}
	}
	return out
}

func TestRelistRemoveExpire(t *testing.T) {
	s := newTestSim(t, Options{StartID: 1001})
	s.Add("a", "b", "c")
	s.Add("a") // re-listed: moves behind c under ID 1004
	_, r := get(t, s, "POST", "/api/get", "sim-key", `{"set":"sip","id":"100"}`)
	if got := toStrings(r.IPAddress); !slices.Equal(got, []string{"b", "c", "a"}) || r.ID != "1004" {
		t.Fatalf("after re-listing: %q ID %s", got, r.ID)
	}
	if n := s.Remove("b", "zz"); n != 1 {
		t.Fatalf("Remove = %d", n)
	}
	if n := s.Expire(1); n != 1 || s.Len() != 1 || s.LastID() != "1004" {
		t.Fatalf("Expire = %d, Len %d, LastID %s", n, s.Len(), s.LastID())
	}
}

func TestV2SetsAndChecks(t *testing.T) {
	s := newTestSim(t, Options{})
	s.Add("1.1.1.1")
	s.AddSet(SetHTTP, "2.2.2.2")
	cases := []struct{ body, want string }{
		{`{"set":"sip","id":"100"}`, "1.1.1.1"},
		{`{"set":"http","id":"100"}`, "2.2.2.2"},
		{`{"set":"all","id":100}`, "1.1.1.1 2.2.2.2"},
		{`{"id":"0"}`, "1.1.1.1"},
	}
	for _, tc := range cases {
		if _, r := get(t, s, "POST", "/api/get", "sim-key", tc.body); strings.Join(toStrings(r.IPAddress), " ") != tc.want {
			t.Errorf("%s: %+v, want %s", tc.body, r, tc.want)
		}
	}
	if st, _ := get(t, s, "POST", "/api/get", "sim-key", `{"set":"smtp"}`); st != 400 {
		t.Errorf("bad set: %d", st)
	}
	if st, r := get(t, s, "POST", "/api/check", "sim-key", `{"set":"http","ipaddress":"2.2.2.2"}`); st != 200 || r.ID == "none" {
		t.Errorf("v2 check listed: %d %+v", st, r)
	}
	if st, r := get(t, s, "GET", "/api/sim-key/check/2.2.2.2", "", ""); st != 400 || r.ID != "none" {
		t.Errorf("v1 check of an http-only entry: %d %+v, want not blocked", st, r)
	}
	st := s.Stats()
	if st.ByEndpoint[EndpointV2Get] != 5 || st.ByEndpoint[EndpointV2Check] != 1 || st.ByEndpoint[EndpointV1Check] != 1 {
		t.Errorf("per endpoint %v", st.ByEndpoint)
	}
}

func TestUnauthorized(t *testing.T) {
	s := newTestSim(t, Options{Key: "k"})
	for _, tc := range []struct{ method, path, key string }{
		{"GET", "/api/nope/banned", ""},
		{"POST", "/api/get", "nope"},
		{"POST", "/api/get", ""},
	} {
		st, r := get(t, s, tc.method, tc.path, tc.key, `{}`)
		if st != 403 || r.ID != "unauthorized" || r.IPAddress != "none" {
			t.Errorf("%s %s key %q: %d %+v", tc.method, tc.path, tc.key, st, r)
		}
	}
	if s.Stats().Unauthorized != 3 {
		t.Errorf("Unauthorized = %d", s.Stats().Unauthorized)
	}
}

func TestRateLimitWindow(t *testing.T) {
	window := 150 * time.Millisecond
	s := newTestSim(t, Options{MaxRequests: 2, RateWindow: window})
	statuses := func(n int) []int {
		var out []int
		for range n {
			st, _ := get(t, s, "GET", "/api/sim-key/banned", "", "")
			out = append(out, st)
		}
		return out
	}
	if got := statuses(4); !slices.Equal(got, []int{400, 400, 429, 429}) {
		t.Fatalf("statuses %v", got)
	}
	time.Sleep(window)
	// Refused requests did not count, so a whole window later both pass.
	if got := statuses(2); !slices.Equal(got, []int{400, 400}) {
		t.Fatalf("after a window: %v", got)
	}
	if s.RateLimited() != 2 {
		t.Fatalf("RateLimited = %d", s.RateLimited())
	}
}

func TestEndFormsOnTheWire(t *testing.T) {
	s := newTestSim(t, Options{})
	want := map[EndForm]struct {
		status int
		ip     any
	}{
		EndArray400:  {400, []any{"no new bans"}},
		EndString400: {400, "no new bans"},
		EndArray404:  {404, []any{"no new bans"}},
		EndString404: {404, "no new bans"},
		EndIDOnly200: {200, nil},
	}
	for _, f := range EndForms() {
		s.SetEndForm(f)
		st, r := get(t, s, "GET", "/api/sim-key/banned", "", "")
		w := want[f]
		if st != w.status || r.ID != "none" || !jsonEqual(r.IPAddress, w.ip) {
			t.Errorf("%s: %d %+v", f, st, r)
		}
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

func TestFaultsAreConsumedInOrder(t *testing.T) {
	s := newTestSim(t, Options{OversizeBytes: 1 << 20})
	s.Add("1.1.1.1")
	s.FailNext(Fault502, FaultEmptyObject, FaultOversized, Fault429)
	for _, want := range []struct {
		status int
		size   int
	}{{502, -1}, {200, 2}, {200, 1 << 20}, {429, -1}, {200, -1}} {
		resp, err := http.Get(s.URL() + "/api/sim-key/banned")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want.status || (want.size >= 0 && len(body) != want.size) {
			t.Errorf("got %d with %d bytes, want %d (%d bytes)", resp.StatusCode, len(body), want.status, want.size)
		}
	}
	if st := s.Stats(); st.Faults != 4 || st.RateLimited != 1 || s.PendingFaults() != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestResetAndHang(t *testing.T) {
	s := New(Options{MaxHang: time.Minute})
	s.FailNext(FaultReset, FaultHang)
	if _, err := http.Get(s.URL() + "/api/sim-key/banned"); err == nil {
		t.Fatal("a reset connection gave a response")
	}
	done := make(chan error, 1)
	go func() {
		_, err := http.Get(s.URL() + "/api/sim-key/banned")
		done <- err
	}()
	for s.Requests() < 2 {
		time.Sleep(5 * time.Millisecond)
	}
	start := time.Now()
	s.Close() // must release the hang, not wait out MaxHang
	if err := <-done; err == nil {
		t.Fatal("a hung request got a response")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Close took %s", d)
	}
}

func TestPublicIPv4s(t *testing.T) {
	a, b := PublicIPv4s(2000, 9), PublicIPv4s(2000, 9)
	if !slices.Equal(a, b) || slices.Equal(a, PublicIPv4s(2000, 10)) {
		t.Fatal("not deterministic per seed")
	}
	seen := map[string]bool{}
	for _, s := range a {
		ip := netip.MustParseAddr(s)
		if seen[s] || !ip.Is4() || !IsPublic(ip) || ip.IsPrivate() || netip.MustParsePrefix("100.64.0.0/10").Contains(ip) {
			t.Fatalf("bad or repeated address %s", s)
		}
		seen[s] = true
	}
	for _, s := range []string{"10.1.2.3", "127.0.0.1", "169.254.1.1", "224.0.0.1", "0.0.0.0", "100.64.1.1", "255.255.255.255"} {
		if IsPublic(netip.MustParseAddr(s)) {
			t.Errorf("IsPublic(%s)", s)
		}
	}
}

func TestHostilePages(t *testing.T) {
	s := newTestSim(t, Options{PageSize: 3, OverlongEntries: 7})
	s.Add("192.0.2.10", "192.0.2.11")
	s.FailNext(FaultCursorCycle, FaultCursorCycle, FaultCursorCycle, FaultCursorBack, FaultCursorBack,
		FaultCursorBack, FaultCursorBack, FaultOverlong, NoFault)
	want := []struct {
		id string
		n  int
	}{{"1000", 3}, {"2000", 3}, {"1000", 3}, {"3000", 3}, {"2000", 3}, {"1000", 3}, {"1", 3}, {"1701000002", 7}}
	for k, w := range want {
		st, r := get(t, s, "GET", "/api/sim-key/banned/100", "", "")
		if st != 200 || r.ID != w.id || !slices.Equal(toStrings(r.IPAddress), HostileEntries(k, w.n)) {
			t.Errorf("hostile page %d: %d ID %q %v, want 200 ID %q with HostileEntries(%d, %d)", k, st, r.ID, r.IPAddress, w.id, k, w.n)
		}
	}
	// NoFault: the normal answer, not counted as a fault.
	if st, r := get(t, s, "GET", "/api/sim-key/banned/100", "", ""); st != 200 || len(toStrings(r.IPAddress)) != 2 {
		t.Errorf("after NoFault: %d %+v, want the real list", st, r)
	}
	if st := s.Stats(); st.Faults != len(want) || s.PendingFaults() != 0 {
		t.Errorf("faults served %d, pending %d; want %d and 0", st.Faults, s.PendingFaults(), len(want))
	}
}

func TestHostileEntriesAreDistinctDocumentationAddresses(t *testing.T) {
	doc := netip.MustParsePrefix("2001:db8::/32")
	seen := map[string]bool{}
	for k := range 3 {
		for _, e := range HostileEntries(k, 300) {
			a, err := netip.ParseAddr(e)
			if err != nil || !doc.Contains(a) || a.String() != e || seen[e] {
				t.Fatalf("entry %q: not a canonical, new documentation address (%v)", e, err)
			}
			seen[e] = true
		}
	}
}

func TestRedirectFault(t *testing.T) {
	s := newTestSim(t, Options{})
	s.FailNext(Fault302)
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get(s.URL() + "/api/sim-key/banned/100")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/moved/api/sim-key/banned/100" {
		t.Fatalf("got %d to %q, want 302 to /moved/api/sim-key/banned/100", resp.StatusCode, resp.Header.Get("Location"))
	}
	// Where the redirect points is counted, so a test can see a client follow it.
	s.FailNext(Fault302)
	resp, err = http.Get(s.URL() + "/api/sim-key/banned/100")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || s.Stats().ByEndpoint[EndpointOther] != 1 {
		t.Fatalf("followed: %d, other %d; want 404 and 1", resp.StatusCode, s.Stats().ByEndpoint[EndpointOther])
	}
}
