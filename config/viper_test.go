package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"
)

func mustLayer(t *testing.T, name, text string) layer {
	t.Helper()
	l, err := parseLayer(name, []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// The defaults, the main file and the overlay all go through viper, which
// merges nested maps key by key, replaces lists and leaves the defaults
// out of InConfig.
func TestViperHoldsTheLayers(t *testing.T) {
	v, err := newViper([]layer{
		mustLayer(t, "main", `apiban:
  api_key: TOPSECRET-apikey-7f3a
  url: https://mirror.example
  poll_interval: 10m
crowdsec:
  password: TOPSECRET-password-91c2
  login: base-login
allowlist:
  cidrs: [10.0.0.0/8, 192.0.2.1]
`),
		mustLayer(t, "local", "apiban:\n  poll_interval: 15m\ncrowdsec:\n  login: local-login\nallowlist:\n  cidrs: [198.51.100.0/24]\n"),
	})
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]any{
		"apiban.url":           "https://mirror.example", // main file, beside an overlaid key
		"apiban.poll_interval": "15m",                    // overlay wins, as text
		"apiban.set":           "sip",                    // default
		"apiban.timeout":       30 * time.Second,         // default, typed
		"crowdsec.login":       "local-login",
		"allowlist.cidrs":      []any{"198.51.100.0/24"}, // lists are replaced
	} {
		if got := v.Get(key); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("viper %s = %#v, want %#v", key, got, want)
		}
	}
	if !v.InConfig("apiban.url") || v.InConfig("crowdsec.lapi_url") || !v.IsSet("crowdsec.lapi_url") {
		t.Error("InConfig counts a default, or IsSet does not")
	}
	// The secrets travel wrapped, and unwrap into the struct.
	if got := fmt.Sprint(v.Get(keyPassword)); got != Masked {
		t.Errorf("viper holds the password as %q", got)
	}
	c, err := decode(v)
	if err != nil {
		t.Fatal(err)
	}
	if c.CrowdSec.Password != secretPassword || c.APIBAN.APIKey != secretKey || c.APIBAN.PollInterval != 15*time.Minute {
		t.Errorf("decoded %q, %q, %v", c.APIBAN.APIKey, c.CrowdSec.Password, c.APIBAN.PollInterval)
	}
}

func TestSecretTextNeverPrints(t *testing.T) {
	s := secretText{secretPassword}
	tree := map[string]any{"crowdsec": map[string]any{"password": s}}
	j, err := json.Marshal(tree)
	if err != nil {
		t.Fatal(err)
	}
	y, err := yaml.Marshal(tree)
	if err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{
		fmt.Sprint(s), fmt.Sprintf("%+v %#v %s %q %x %d", s, s, s, s, s, s),
		fmt.Sprintf("%v %+v %#v", tree, tree, tree), string(j), string(y),
	} {
		// JSON writes < and > escaped.
		if strings.Contains(out, "TOPSECRET") || !strings.Contains(out, "redacted") {
			t.Errorf("secretText printed as %s", out)
		}
	}
}

// viper's merge logs through the package-level viper logger, and at error
// level gives both values of a mapping it cannot merge, dropping the
// overlay's. A null section in the overlay is the one such mismatch that
// passes checkShape: it must reset the section to its defaults, as in the
// main file, and no secret may reach the log whatever the logger.
func TestOverlayMergeKeepsSecretsOutOfViperLogs(t *testing.T) {
	for name, newHandler := range map[string]func(*bytes.Buffer) slog.Handler{
		"text": func(b *bytes.Buffer) slog.Handler {
			return slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})
		},
		"json": func(b *bytes.Buffer) slog.Handler {
			return slog.NewJSONHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})
		},
	} {
		t.Run(name, func(t *testing.T) {
			var logs bytes.Buffer
			viper.SetOptions(viper.WithLogger(slog.New(newHandler(&logs))))
			t.Cleanup(viper.Reset)

			dir := t.TempDir()
			path := writeFile(t, filepath.Join(dir, "c.yaml"), validBase+
				"  login: base-login\ndecisions:\n  type: captcha\n", 0o600)
			writeFile(t, path+LocalSuffix, "apiban:\n  api_key: TOPSECRET-local-key\ncrowdsec: ~\ndecisions:\n", 0o600)

			c, err := LoadWith(path, envOf(map[string]string{EnvPassword: "env-password"}))
			if err != nil {
				t.Fatal(err)
			}
			want := withSecrets("TOPSECRET-local-key", "env-password")
			mustEqual(t, c, want) // both null sections are back to their defaults

			out := logs.String()
			if strings.Contains(out, "TOPSECRET") {
				t.Errorf("viper's log shows a secret:\n%s", out)
			} else if !strings.Contains(out, Masked) {
				t.Errorf("viper logged no merged secret: the test no longer covers the merge\n%s", out)
			}
			if strings.Contains(out, "ERROR") {
				t.Errorf("viper dropped an overlay value:\n%s", out)
			}
		})
	}
}

// Each file is checked on its own, before viper merges them: a wrong value
// in the main file is reported even when the overlay replaces it, and an
// error both files make is reported once.
func TestEachFileIsChecked(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, filepath.Join(dir, "c.yaml"), validBase+"log: x\ndecisions:\n  batch_size: many\n", 0o600)
	writeFile(t, path+LocalSuffix, "log: y\ndecisions:\n  batch_size: 10\n", 0o600)
	_, err := LoadWith(path, noEnv)
	want := "config: decisions.batch_size: want an integer, got \"many\"\nconfig: unknown key \"log\""
	if err == nil || err.Error() != want {
		t.Errorf("error:\n%v\nwant:\n%s", err, want)
	}
}
