package mirror

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/crowdsecurity/crowdsec/pkg/models"
)

// A page asked twice is the same body, encoded once; once the set
// changes, the same cursor answers the new content, never the cached one.
func TestPagesAreCachedPerGeneration(t *testing.T) {
	s := readySet(addrs(1, 300)...)
	u := serve(t, s, Options{}).URL
	get := func(id string) string {
		t.Helper()
		resp, err := http.Get(u + "/api/" + testKey + "/banned/" + id)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	first := get("100")
	if again := get("100"); again != first {
		t.Fatalf("the same page twice differs:\n%s\n%s", first, again)
	}
	second := get("1250") // after decision 250: the last 50
	if strings.Contains(second, "10.0.1.45") {
		t.Fatalf("the second page already holds decision 301: %s", second)
	}
	s.Apply(&models.DecisionsStreamResponse{New: []*models.Decision{decision(301, "Ip", "10.0.1.45")},
		Deleted: []*models.Decision{decision(251, "Ip", "10.0.0.251")}})
	after := get("1250")
	if !strings.Contains(after, `"10.0.1.45"`) || strings.Contains(after, `"10.0.0.251"`) {
		t.Fatalf("after the set changed the page is stale: %s", after)
	}
	if h := s.Generation(); h < 2 {
		t.Fatalf("generation %d after two rebuilds", h)
	}
}

func TestPageCacheIgnoresAnOlderGeneration(t *testing.T) {
	var c pageCache
	c.put(2, 100, cachedPage{body: []byte("new"), entries: 1})
	c.put(1, 100, cachedPage{body: []byte("old"), entries: 1})
	if p, ok := c.get(2, 100); !ok || string(p.body) != "new" {
		t.Fatalf("get(2) = %q, %v; want the newer generation's page", p.body, ok)
	}
	if _, ok := c.get(1, 100); ok {
		t.Fatal("a page of an older generation was kept")
	}
}

// The mirror reads a decision as the embedded bouncer does: a zoned
// address is no address to serve, a mapped one is served as IPv4.
func TestSetReadsDecisionsAsTheBouncer(t *testing.T) {
	s := readySet(decision(1, "Ip", "2001:db8::1%eth0"), decision(2, "Ip", "::ffff:203.0.113.5"), decision(3, "Range", "198.51.100.7/24"))
	if got := s.All(); len(got) != 2 || got[0] != "203.0.113.5" || got[1] != "198.51.100.0/24" {
		t.Fatalf("served %q, want the mapped address unmapped, the range masked, the zoned one left out", got)
	}
}
