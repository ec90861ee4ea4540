package apiban_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/source/apiban"
)

// The rules the configuration checks with, each with the exact message it
// puts after the key's name. None quotes the key or a URL's userinfo.
func TestRules(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want string // "" means accepted
	}{
		{"key", apiban.CheckKey("abc-DEF_123.~+=:"), ""},
		{"key empty", apiban.CheckKey(""), "required"},
		{"key with slash", apiban.CheckKey("abc/def-secretish"), "must be printable ASCII without spaces or '/'"},
		{"key with space", apiban.CheckKey("has space-secretish"), "must be printable ASCII without spaces or '/'"},
		{"key with tab", apiban.CheckKey("tab\tsecretish"), "must be printable ASCII without spaces or '/'"},
		{"key not ASCII", apiban.CheckKey("clé-secretish"), "must be printable ASCII without spaces or '/'"},
		{"key with control", apiban.CheckKey("a\x7fsecretish"), "must be printable ASCII without spaces or '/'"},
		{"url", apiban.CheckBaseURL("https://apiban.org"), ""},
		{"url with port and path", apiban.CheckBaseURL("http://127.0.0.1:8080/base/"), ""},
		{"url scheme", apiban.CheckBaseURL("ftp://apiban.org"), "want an absolute http(s) URL"},
		{"url no host", apiban.CheckBaseURL("https://"), "want an absolute http(s) URL"},
		{"url query", apiban.CheckBaseURL("https://apiban.org/?x=1"), "want scheme://host[:port][/path] only, without userinfo, query or fragment"},
		{"url empty query", apiban.CheckBaseURL("https://apiban.org/?"), "want scheme://host[:port][/path] only, without userinfo, query or fragment"},
		{"url fragment", apiban.CheckBaseURL("https://apiban.org/#x"), "want scheme://host[:port][/path] only, without userinfo, query or fragment"},
		{"url userinfo", apiban.CheckBaseURL("https://u:secretish@apiban.org"), "want scheme://host[:port][/path] only, without userinfo, query or fragment"},
		{"v1", apiban.CheckVersion("v1"), ""},
		{"v2", apiban.CheckVersion("v2"), ""},
		{"v3", apiban.CheckVersion("v3"), `want v1 or v2, got "v3"`},
		{"v2 all", apiban.CheckSet("v2", "all"), ""},
		{"v2 http", apiban.CheckSet("v2", "http"), ""},
		{"v1 sip", apiban.CheckSet("v1", "sip"), ""},
		{"unknown set", apiban.CheckSet("v2", "smtp"), `want sip, http or all, got "smtp"`},
		{"v1 http", apiban.CheckSet("v1", "http"), `must be sip with API version v1, got "http"`},
		{"one page", apiban.CheckMaxPages(1), ""},
		{"no page", apiban.CheckMaxPages(0), "must be 1 or more, got 0"},
		{"negative pages", apiban.CheckMaxPages(-1), "must be 1 or more, got -1"},
	}
	for _, tc := range cases {
		got := ""
		if tc.err != nil {
			got = tc.err.Error()
		}
		if got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
		if strings.Contains(got, "secretish") {
			t.Errorf("%s: error quotes a secret: %q", tc.name, got)
		}
	}
}

// New trusts its Config: what the configuration checked is not checked
// again, so `-t` and a start cannot disagree. It refuses only a tuning
// that would break the retries, naming the field.
func TestNewTrustsItsConfig(t *testing.T) {
	cfg := testConfig("https://apiban.org/", "k", "v1")
	cfg.MaxRetries = -1 // a caller's bug: still one attempt, never a loop
	if _, err := apiban.New(cfg); err != nil {
		t.Fatalf("New refused a config: %v", err)
	}
	cases := []struct {
		field string
		edit  func(*apiban.Config)
	}{
		{"BackoffBase", func(c *apiban.Config) { c.BackoffBase = -time.Second }},
		{"BackoffMax", func(c *apiban.Config) { c.BackoffBase, c.BackoffMax = time.Minute, time.Second }},
		{"MaxBodyBytes", func(c *apiban.Config) { c.MaxBodyBytes = -1 }},
	}
	for _, tc := range cases {
		cfg := testConfig("https://apiban.org", "good-key", "v2")
		tc.edit(&cfg)
		_, err := apiban.New(cfg)
		if !errors.Is(err, apiban.ErrInvalidConfig) || !strings.HasPrefix(err.Error(), "apiban: invalid config: "+tc.field+": ") {
			t.Errorf("%s: got %v, want an invalid config error naming it", tc.field, err)
		}
	}
}
