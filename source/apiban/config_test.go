package apiban_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/source/apiban"
)

func TestConfigDefaultsAreValid(t *testing.T) {
	if _, err := apiban.New(apiban.Config{APIKey: "k"}); err != nil {
		t.Fatalf("defaults rejected: %v", err)
	}
}

func TestConfigErrorsNameTheField(t *testing.T) {
	cases := []struct {
		field string
		edit  func(*apiban.Config)
	}{
		{"APIKey", func(c *apiban.Config) { c.APIKey = "" }},
		{"APIKey", func(c *apiban.Config) { c.APIKey = "has space-secretish" }},
		{"APIKey", func(c *apiban.Config) { c.APIKey = "a/b-secretish" }},
		{"BaseURL", func(c *apiban.Config) { c.BaseURL = "ftp://apiban.org" }},
		{"BaseURL", func(c *apiban.Config) { c.BaseURL = "https://" }},
		{"BaseURL", func(c *apiban.Config) { c.BaseURL = "https://apiban.org/?x=1" }},
		{"Version", func(c *apiban.Config) { c.Version = "v3" }},
		{"Set", func(c *apiban.Config) { c.Set = "smtp" }},
		{"Set", func(c *apiban.Config) { c.Version, c.Set = "v1", "http" }},
		{"MaxRequests", func(c *apiban.Config) { c.MaxRequests = -1 }},
		{"RateWindow", func(c *apiban.Config) { c.RateWindow = -time.Second }},
		{"Timeout", func(c *apiban.Config) { c.Timeout = -time.Second }},
		{"MaxRetries", func(c *apiban.Config) { c.MaxRetries = -1 }},
		{"BackoffMax", func(c *apiban.Config) { c.BackoffBase, c.BackoffMax = time.Minute, time.Second }},
		{"MaxBodyBytes", func(c *apiban.Config) { c.MaxBodyBytes = -1 }},
		{"MaxPages", func(c *apiban.Config) { c.MaxPages = -1 }},
	}
	for _, tc := range cases {
		cfg := apiban.Config{APIKey: "good-key"}
		tc.edit(&cfg)
		_, err := apiban.New(cfg)
		if !errors.Is(err, apiban.ErrInvalidConfig) || !strings.Contains(err.Error(), tc.field+":") {
			t.Errorf("%s: got %v, want an invalid config error naming it", tc.field, err)
			continue
		}
		if strings.Contains(err.Error(), "secretish") {
			t.Errorf("%s: error quotes the key: %v", tc.field, err)
		}
	}
}
