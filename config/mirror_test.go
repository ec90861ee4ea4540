package config

import (
	"strings"
	"testing"
	"time"
)

// mirrorOn is an enabled mirror section; cases append their own keys.
const mirrorOn = "mirror:\n  enabled: true\n  lapi_key: TOPSECRET-mirror-lapi\n"

const oneKey = "  keys: [{name: kamailio1, key: TOPSECRET-client-key-1}]\n"

func TestMirrorBadValues(t *testing.T) {
	cases := []struct{ name, keys, want string }{
		{"no keys", "", `config: mirror.keys: at least one key is required when mirror.enabled is true`},
		{"no lapi key", oneKey + "  lapi_key: \"\"\n",
			`config: mirror.lapi_key: required when mirror.enabled is true (cscli bouncers add crowdsec-apiban-bridge-mirror gives one)`},
		{"lapi key space", oneKey + "  lapi_key: TOPSECRET x\n", `config: mirror.lapi_key: must not contain whitespace`},
		{"listen host name", oneKey + "  listen_addr: localhost:60604\n", `config: mirror.listen_addr: want IP:port such as 127.0.0.1:60604, got "localhost:60604"`},
		{"listen no port", oneKey + "  listen_addr: 127.0.0.1\n", `config: mirror.listen_addr: want IP:port such as 127.0.0.1:60604, got "127.0.0.1"`},
		{"short key", "  keys: [{name: a, key: TOPSECRET}]\n", `config: mirror.keys[0].key: must be at least 16 characters (openssl rand -hex 16 gives one)`},
		{"key with slash", "  keys: [{name: a, key: TOPSECRET/0123456789}]\n", `config: mirror.keys[0].key: must be printable ASCII without spaces or '/'`},
		{"empty key", "  keys: [{name: a}]\n", `config: mirror.keys[0].key: required`},
		{"duplicate key", "  keys: [{key: TOPSECRET-client-key-1}, {key: TOPSECRET-client-key-1}]\n", `config: mirror.keys[1].key: is also mirror.keys[0].key`},
		{"duplicate name", "  keys: [{name: a, key: TOPSECRET-client-key-1}, {name: a, key: TOPSECRET-client-key-2}]\n", `config: mirror.keys[1].name: "a" is also mirror.keys[0].name`},
		{"bad name", "  keys: [{name: \"my box\", key: TOPSECRET-client-key-1}]\n", `config: mirror.keys[0].name: want letters, digits, '.', '-' and '_' (at most 64), got "my box"`},
		{"key not a mapping", "  keys: [TOPSECRET-client-key-1]\n", `config: mirror.keys[0]: want a mapping, got a string`},
		{"key type", "  keys: [{name: a, key: [TOPSECRET]}]\n", `config: mirror.keys[0].key: want a string, got a list`},
		{"unknown key field", "  keys: [{name: a, secret: TOPSECRET}]\n", `config: unknown key "mirror.keys[0].secret"`},
		{"origin", oneKey + "  origins: [\"\"]\n", `config: mirror.origins[0]: want an origin such as apiban, crowdsec or cscli, got ""`},
		{"update frequency", oneKey + "  update_frequency: 100ms\n", `config: mirror.update_frequency: must be at least 1s, got 100ms`},
		{"resync too often", oneKey + "  resync_interval: 59s\n", `config: mirror.resync_interval: must be 0 (never) or at least 1m, got 59s`},
		{"max requests", oneKey + "  max_requests: -1\n", `config: mirror.max_requests: must be 0 (no limit) or more, got -1`},
		{"rate window", oneKey + "  rate_window: 0s\n", `config: mirror.rate_window: must be at least 1s, got 0s`},
		{"cert without key", oneKey + "  tls_cert_path: {dir}/exists.pem\n", `config: mirror.tls_key_path: required when mirror.tls_cert_path is set`},
		{"cert missing", oneKey + "  tls_cert_path: {dir}/missing.pem\n  tls_key_path: {dir}/exists.pem\n", `config: mirror.tls_cert_path: stat {dir}/missing.pem: no such file or directory`},
		{"key unexpanded", "  keys: [{name: a, key: \"${MIRROR KEY}TOPSECRET\"}]\n", `config: mirror.keys[0].key: holds an unexpanded ${...} reference`},
		{"lapi key unexpanded", oneKey + "  lapi_key: ${LAPI-KEY}TOPSECRET\n", `config: mirror.lapi_key: holds an unexpanded ${...} reference`},
		// Every error, as in the other sections, not the first.
		{"key and cert missing", oneKey + "  tls_key_path: {dir}/missing.pem\n",
			"config: mirror.tls_cert_path: required when mirror.tls_key_path is set\nconfig: mirror.tls_key_path: stat {dir}/missing.pem: no such file or directory"},
		{"pair does not load", oneKey + "  tls_cert_path: {dir}/exists.pem\n  tls_key_path: {dir}/exists.pem\n", `config: mirror.tls_cert_path: does not load with mirror.tls_key_path: tls: failed to find any PEM data in certificate input`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			section := mirrorOn
			if strings.Contains(c.keys, "lapi_key") {
				section = "mirror:\n  enabled: true\n"
			}
			_, dir, err := loadBouncer(t, section+c.keys)
			want := strings.ReplaceAll(c.want, "{dir}", dir)
			if err == nil || err.Error() != want {
				t.Fatalf("got  %v\nwant %s", err, want)
			}
			if strings.Contains(err.Error(), "TOPSECRET") {
				t.Fatalf("a secret in %q", err)
			}
		})
	}
}

// A good section loads; unnamed keys get key-N; Redacted masks every
// key; a disabled section is not checked.
func TestMirrorLoads(t *testing.T) {
	c, _, err := loadBouncer(t, mirrorOn+"  keys: [{name: kamailio1, key: TOPSECRET-client-key-1}, {key: TOPSECRET-client-key-2}]\n  origins: [apiban, crowdsec]\n")
	if err != nil {
		t.Fatal(err)
	}
	m := c.Mirror
	if len(m.Keys) != 2 || m.Keys[0] != (MirrorKey{"kamailio1", "TOPSECRET-client-key-1"}) || m.Keys[1] != (MirrorKey{"key-2", "TOPSECRET-client-key-2"}) {
		t.Fatalf("keys %+v", m.Keys)
	}
	if m.LAPIKey != "TOPSECRET-mirror-lapi" || m.ListenAddr != "127.0.0.1:60604" || m.MaxRequests != 60 || m.RateWindow != time.Minute {
		t.Fatalf("mirror %+v", m)
	}
	if r := c.Redacted(); strings.Contains(r, "TOPSECRET") || !strings.Contains(r, "name: kamailio1") {
		t.Fatalf("redacted:\n%s", r)
	}
	if _, _, err := loadBouncer(t, "mirror:\n  enabled: false\n  listen_addr: nowhere\n"); err != nil {
		t.Fatal(err)
	}
}
