package mirror

import (
	"fmt"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/crowdsecurity/crowdsec/pkg/models"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/source/apiban"
)

const testKey = "mirror-test-key-0123456789"

func decision(id int64, scope, value string) *models.Decision {
	typ, dur, origin := "ban", "167h59m", "apiban"
	return &models.Decision{ID: id, Type: &typ, Scope: &scope, Value: &value, Duration: &dur, Origin: &origin}
}

// addrs returns n decisions with IDs from first, each banning one
// address of 10.0.0.0/8.
func addrs(first int64, n int) []*models.Decision {
	out := make([]*models.Decision, n)
	for i := range n {
		id := first + int64(i)
		out[i] = decision(id, "Ip", fmt.Sprintf("10.%d.%d.%d", id>>16&255, id>>8&255, id&255))
	}
	return out
}

func readySet(ds ...*models.Decision) *Set {
	s := NewSet(nil)
	s.Apply(&models.DecisionsStreamResponse{New: ds})
	return s
}

func serve(t *testing.T, s *Set, opts Options) *httptest.Server {
	t.Helper()
	if opts.Keys == nil {
		opts.Keys = []Key{{Name: "kamailio1", Key: testKey}}
	}
	srv := httptest.NewServer(NewHandler(s, opts))
	t.Cleanup(srv.Close)
	return srv
}

func client(t *testing.T, url, version string) *apiban.Client {
	t.Helper()
	c, err := apiban.New(apiban.Config{BaseURL: url, APIKey: testKey, Version: version, Set: "sip",
		RateWindow: time.Minute, Timeout: 10 * time.Second, MaxRetries: 5,
		BackoffBase: time.Millisecond, BackoffMax: 5 * time.Millisecond, MaxPages: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func prefixSet(texts []string) map[netip.Prefix]bool {
	m := map[netip.Prefix]bool{}
	for _, s := range texts {
		p, err := apiban.ParseEntry(s)
		if err != nil {
			panic(err)
		}
		m[p] = true
	}
	return m
}
