package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/lapitest"
)

// Distinctive secrets: no error text may ever contain "TOPSECRET".
const (
	secretKey      = "TOPSECRET-apikey-7f3a"
	secretPassword = "TOPSECRET-password-91c2"
)

// validBase is the smallest valid file: the two secrets, defaults for the rest.
const validBase = `apiban:
  api_key: TOPSECRET-apikey-7f3a
crowdsec:
  password: TOPSECRET-password-91c2
`

func noEnv(string) string { return "" }

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// withPKI writes certificates and keys that load; its Replace fills
// {cert}, {key} and {ca} (a client pair and the CA that signed it).
func withPKI(t *testing.T) *strings.Replacer {
	t.Helper()
	f, err := lapitest.WritePKI(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return strings.NewReplacer("{cert}", f.AgentCert, "{key}", f.AgentKey, "{ca}", f.CA)
}

func writeFile(t *testing.T, path, content string, mode os.FileMode) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	// WriteFile's mode is filtered by the umask; tests need the exact one.
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestBadConfigs loads validBase with each case as its .local overlay and
// wants exactly the given error; {dir} stands for the test's directory.
func TestBadConfigs(t *testing.T) {
	cases := []struct {
		name    string
		overlay string
		want    string
	}{
		// Syntax.
		{"bad yaml", "apiban: [\n", `config: {dir}/c.yaml.local: yaml: line 1: did not find expected node content`},
		{"bad yaml holding a secret", "crowdsec:\n  password: TOPSECRET-x\n  - y\n", `config: {dir}/c.yaml.local: yaml: line 1: did not find expected key`},
		{"top level list", "- a\n", `config: {dir}/c.yaml.local: want a mapping of keys at the top level, got a list`},
		{"top level scalar", "TOPSECRET-x\n", `config: {dir}/c.yaml.local: want a mapping of keys at the top level, got a string`},
		{"duplicate key", "apiban:\n  url: https://a.example\n  url: https://b.example\n", `config: {dir}/c.yaml.local: line 3: duplicate key "apiban.url"`},
		{"alias bomb", "a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\n",
			`config: {dir}/c.yaml.local: line 1: more than 100000 values (alias expansion?)`},
		{"file too large", "# {big}\n", `config: {dir}/c.yaml.local: larger than 1048576 bytes`},
		{"complex key", "apiban:\n  ? [a]\n  : b\n", `config: {dir}/c.yaml.local: line 2: a key under "apiban" is not a plain name`},

		// Unknown keys.
		{"unknown top key", "polling: 5m\n", `config: unknown key "polling"`},
		{"unknown nested key", "apiban:\n  api_verison: v2\n", `config: unknown key "apiban.api_verison"`},
		{"keys are case sensitive", "apiban:\n  API_KEY: TOPSECRET-x\n", `config: unknown key "apiban.API_KEY"`},
		{"derived field is no key", "level: 3\n", `config: unknown key "level"`},
		{"warnings is no key", "warnings: [a]\n", `config: unknown key "warnings"`},
		{"prefixes is no key", "allowlist:\n  prefixes: [10.0.0.0/8]\n", `config: unknown key "allowlist.prefixes"`},
		{"merge key", "base: &b {url: x}\napiban:\n  <<: *b\n", "config: unknown key \"apiban.<<\"\nconfig: unknown key \"base\""},
		{"several unknown keys", "zeta: 1\ncrowdsec:\n  pasword: TOPSECRET-x\nalpha: 2\n",
			"config: unknown key \"alpha\"\nconfig: unknown key \"crowdsec.pasword\"\nconfig: unknown key \"zeta\""},

		// Wrong types.
		{"section is a scalar", "apiban: TOPSECRET-x\n", `config: apiban: want a mapping, got a string`},
		{"section is a list", "decisions: [a]\n", `config: decisions: want a mapping, got a list`},
		{"int not a number", "apiban:\n  max_requests: ten\n", `config: apiban.max_requests: want an integer, got "ten"`},
		{"int is a float", "decisions:\n  batch_size: 1.5\n", `config: decisions.batch_size: want an integer, got "1.5"`},
		{"int is empty", "apiban:\n  max_retries: \"\"\n", `config: apiban.max_retries: want an integer, got ""`},
		{"duration without unit", "apiban:\n  poll_interval: 300\n", `config: apiban.poll_interval: want a duration such as 30s, 5m or 168h, got "300"`},
		{"duration in words", "decisions:\n  duration: 7 days\n", `config: decisions.duration: want a duration such as 30s, 5m or 168h, got "7 days"`},
		{"duration is a list", "apiban:\n  timeout: [1s]\n", `config: apiban.timeout: want a duration such as 30s, 5m or 168h, got a list`},
		{"bool is yes", "allowlist:\n  lapi_allowlists: yes\n", `config: allowlist.lapi_allowlists: want true or false, got "yes"`},
		{"string is a list", "decisions:\n  type: [ban]\n", `config: decisions.type: want a string, got a list`},
		{"secret is a mapping", "crowdsec:\n  password: {a: TOPSECRET-x}\n", `config: crowdsec.password: want a string, got a mapping`},
		{"api key is a list", "apiban:\n  api_key: [TOPSECRET-x]\n", `config: apiban.api_key: want a string, got a list`},
		{"list is a scalar", "allowlist:\n  cidrs: 10.0.0.0/8\n", `config: allowlist.cidrs: want a list, got "10.0.0.0/8"`},
		{"list item is a mapping", "allowlist:\n  cidrs: [{a: b}]\n", `config: allowlist.cidrs[0]: want a string, got a mapping`},

		// apiban.
		{"api key empty", "apiban:\n  api_key: \"\"\n", `config: apiban.api_key: required (set it here or in APIBAN_API_KEY)`},
		{"api key from unset variable", "apiban:\n  api_key: ${UNSET_VARIABLE}\n", `config: apiban.api_key: required (set it here or in APIBAN_API_KEY)`},
		{"api key with whitespace", "apiban:\n  api_key: TOPSECRET with space\n", `config: apiban.api_key: must be printable ASCII without spaces or '/'`},
		{"api key with tab", "apiban:\n  api_key: \"TOPSECRET\\tx\"\n", `config: apiban.api_key: must be printable ASCII without spaces or '/'`},
		// Once accepted here and refused at start (issue 12).
		{"api key with slash", "apiban:\n  api_key: TOPSECRET/def\n", `config: apiban.api_key: must be printable ASCII without spaces or '/'`},
		{"api key not ASCII", "apiban:\n  api_key: TOPSECRET-clé\n", `config: apiban.api_key: must be printable ASCII without spaces or '/'`},
		{"api key unexpanded", "apiban:\n  api_key: ${APIBAN-KEY}TOPSECRET\n", `config: apiban.api_key: holds an unexpanded ${...} reference`},
		{"url scheme", "apiban:\n  url: ftp://apiban.org\n", `config: apiban.url: want an absolute http(s) URL, got "ftp://apiban.org"`},
		{"url relative", "apiban:\n  url: apiban.org/v2\n", `config: apiban.url: want an absolute http(s) URL, got "apiban.org/v2"`},
		{"url empty", "apiban:\n  url: \"\"\n", `config: apiban.url: want an absolute http(s) URL, got ""`},
		{"url unparsable", "apiban:\n  url: http://[::1\n", `config: apiban.url: want an absolute http(s) URL, got "http://[::1"`},
		{"url password masked", "apiban:\n  url: ftp://u:TOPSECRET@apiban.org\n", `config: apiban.url: want an absolute http(s) URL, got "ftp://u:xxxxx@apiban.org"`},
		{"url unparsable with userinfo", "apiban:\n  url: \"http://u:TOPSECRET@[::1\"\n", `config: apiban.url: want an absolute http(s) URL`},
		{"url with query", "apiban:\n  url: https://apiban.org/?TOPSECRET=1\n", `config: apiban.url: want scheme://host[:port][/path] only, without userinfo, query or fragment`},
		{"url with fragment", "apiban:\n  url: https://apiban.org/#x\n", `config: apiban.url: want scheme://host[:port][/path] only, without userinfo, query or fragment`},
		{"url with userinfo", "apiban:\n  url: https://u:TOPSECRET@apiban.org\n", `config: apiban.url: want scheme://host[:port][/path] only, without userinfo, query or fragment`},
		{"api version", "apiban:\n  api_version: v3\n", `config: apiban.api_version: want v1 or v2, got "v3"`},
		{"set", "apiban:\n  set: ssh\n", `config: apiban.set: want sip, http or all, got "ssh"`},
		{"set with v1", "apiban:\n  api_version: v1\n  set: all\n", `config: apiban.set: must be sip with API version v1, got "all"`},
		{"sets with set", "apiban:\n  set: sip\n  sets: [sip, http]\n", `config: apiban.sets: replaces apiban.set: give one of them, not both (remove apiban.set)`},
		{"sets unknown", "apiban:\n  sets: [sip, ssh]\n", `config: apiban.sets[1]: want sip, http or all, got "ssh"`},
		{"sets with v1", "apiban:\n  api_version: v1\n  sets: [sip, http]\n", `config: apiban.sets[1]: must be sip with API version v1, got "http"`},
		{"sets twice", "apiban:\n  sets: [http, sip, http]\n", `config: apiban.sets[2]: "http" is listed twice`},
		{"sets all with others", "apiban:\n  sets: [sip, all]\n", `config: apiban.sets[1]: all holds sip and http already: list it alone`},
		{"sets is a scalar", "apiban:\n  sets: sip\n", `config: apiban.sets: want a list, got "sip"`},
		{"scenario template without set", "apiban:\n  sets: [sip, http]\ndecisions:\n  scenario_template: apiban/blocklist\n",
			`config: decisions.scenario_template: must contain {set} when apiban.sets lists several sets (each set needs its own scenario), got "apiban/blocklist"`},
		{"scenario template empty", "apiban:\n  sets: [http]\ndecisions:\n  scenario_template: \"\"\n", `config: decisions.scenario_template: required`},
		{"poll interval", "apiban:\n  poll_interval: 5s\n", `config: apiban.poll_interval: must be at least 10s, got 5s`},
		{"max requests", "apiban:\n  max_requests: -1\n", `config: apiban.max_requests: must be 0 (no pacing) or more, got -1`},
		{"rate window zero", "apiban:\n  rate_window: 0s\n", `config: apiban.rate_window: must be positive (the pacing window and the wait after a 429), got 0s`},
		{"rate window negative", "apiban:\n  rate_window: -1m\n", `config: apiban.rate_window: must be positive (the pacing window and the wait after a 429), got -1m`},
		// The wait after a 429 needs a window even without pacing.
		{"rate window without pacing", "apiban:\n  max_requests: 0\n  rate_window: 0s\n", `config: apiban.rate_window: must be positive (the pacing window and the wait after a 429), got 0s`},
		{"full resync below poll", "apiban:\n  full_resync_interval: 1m\n", `config: apiban.full_resync_interval: must be 0 (off) or at least apiban.poll_interval (5m), got 1m`},
		{"full resync negative", "apiban:\n  poll_interval: 1h30m\n  full_resync_interval: -1h\n", `config: apiban.full_resync_interval: must be 0 (off) or at least apiban.poll_interval (1h30m), got -1h`},
		{"timeout", "apiban:\n  timeout: 0s\n", `config: apiban.timeout: must be positive, got 0s`},
		{"max retries", "apiban:\n  max_retries: -2\n", `config: apiban.max_retries: must be 0 or more, got -2`},

		// crowdsec.
		{"lapi url no scheme", "crowdsec:\n  lapi_url: localhost:8080\n", `config: crowdsec.lapi_url: want an absolute http(s) URL, got "localhost:8080"`},
		{"lapi url no host", "crowdsec:\n  lapi_url: http:///v1\n", `config: crowdsec.lapi_url: want an absolute http(s) URL, got "http:///v1"`},
		{"login", "crowdsec:\n  login: \"\"\n", `config: crowdsec.login: required`},
		{"password", "crowdsec:\n  password: \"\"\n",
			`config: crowdsec.password: required unless crowdsec.cert_path and crowdsec.key_path are set (set it here, in CROWDSEC_APIBAN_PASSWORD or through crowdsec.credentials_file)`},
		{"cert without key", "crowdsec:\n  cert_path: {dir}/exists.pem\n", `config: crowdsec.key_path: required when crowdsec.cert_path is set`},
		{"key without cert", "crowdsec:\n  key_path: {dir}/exists.pem\n", `config: crowdsec.cert_path: required when crowdsec.key_path is set`},
		{"cert missing", "crowdsec:\n  cert_path: {dir}/missing.pem\n  key_path: {dir}/exists.pem\n", `config: crowdsec.cert_path: stat {dir}/missing.pem: no such file or directory`},
		{"key missing", "crowdsec:\n  cert_path: {dir}/exists.pem\n  key_path: {dir}/missing.pem\n", `config: crowdsec.key_path: stat {dir}/missing.pem: no such file or directory`},
		// Loaded as the LAPI client loads them at start.
		{"cert does not load", "crowdsec:\n  cert_path: {dir}/exists.pem\n  key_path: {dir}/exists.pem\n",
			`config: crowdsec.cert_path: does not load with crowdsec.key_path: tls: failed to find any PEM data in certificate input`},
		{"ca without a certificate", "crowdsec:\n  ca_cert_path: {dir}/exists.pem\n", `config: crowdsec.ca_cert_path: no PEM certificate in "{dir}/exists.pem"`},
		{"ca is a directory", "crowdsec:\n  ca_cert_path: {dir}/adir\n", `config: crowdsec.ca_cert_path: "{dir}/adir" is a directory`},
		{"credentials file missing", "crowdsec:\n  credentials_file: {dir}/nope.yaml\n", `config: crowdsec.credentials_file: open {dir}/nope.yaml: no such file or directory`},

		// decisions.
		{"duration", "decisions:\n  duration: 30s\n  refresh_before: 0s\n", `config: decisions.duration: must be at least 1m, got 30s`},
		{"type uppercase", "decisions:\n  type: Ban\n", `config: decisions.type: want a lowercase word such as ban or captcha, got "Ban"`},
		{"type empty", "decisions:\n  type: \"\"\n", `config: decisions.type: want a lowercase word such as ban or captcha, got ""`},
		{"type with space", "decisions:\n  type: ban ip\n", `config: decisions.type: want a lowercase word such as ban or captcha, got "ban ip"`},
		{"origin empty", "decisions:\n  origin: \"\"\n", `config: decisions.origin: required`},
		{"origin with space", "decisions:\n  origin: api ban\n", `config: decisions.origin: must not contain whitespace, got "api ban"`},
		{"scenario empty", "decisions:\n  scenario: \"\"\n", `config: decisions.scenario: required`},
		{"scenario with space", "decisions:\n  scenario: apiban sip\n", `config: decisions.scenario: must not contain whitespace, got "apiban sip"`},
		{"batch size zero", "decisions:\n  batch_size: 0\n", `config: decisions.batch_size: must be between 1 and 10000, got 0`},
		{"batch size too big", "decisions:\n  batch_size: 10001\n", `config: decisions.batch_size: must be between 1 and 10000, got 10001`},
		{"refresh before negative", "decisions:\n  refresh_before: -1s\n", `config: decisions.refresh_before: must be 0 or more and less than decisions.duration (168h), got -1s`},
		{"min prefix v4 zero", "decisions:\n  min_prefix_v4: 0\n", `config: decisions.min_prefix_v4: must be between 1 and 32, got 0`},
		{"min prefix v4 too long", "decisions:\n  min_prefix_v4: 33\n", `config: decisions.min_prefix_v4: must be between 1 and 32, got 33`},
		{"min prefix v6 zero", "decisions:\n  min_prefix_v6: 0\n", `config: decisions.min_prefix_v6: must be between 1 and 128, got 0`},
		{"min prefix v6 too long", "decisions:\n  min_prefix_v6: 129\n", `config: decisions.min_prefix_v6: must be between 1 and 128, got 129`},
		{"min prefix not a number", "decisions:\n  min_prefix_v4: /24\n", `config: decisions.min_prefix_v4: want an integer, got "/24"`},
		{"max new per sync negative", "decisions:\n  max_new_per_sync: -1\n", `config: decisions.max_new_per_sync: must be 0 (no cap) or more, got -1`},
		{"max addresses per sync negative", "decisions:\n  max_addresses_per_sync: -1\n", `config: decisions.max_addresses_per_sync: must be 0 (no cap) or more, got -1`},
		{"max pages zero", "apiban:\n  max_pages: 0\n", `config: apiban.max_pages: must be 1 or more, got 0`},
		{"max pages negative", "apiban:\n  max_pages: -1\n", `config: apiban.max_pages: must be 1 or more, got -1`},
		{"lapi timeout zero", "crowdsec:\n  timeout: 0s\n", `config: crowdsec.timeout: must be more than 0 and at most 10m, got 0s`},
		{"lapi timeout too long", "crowdsec:\n  timeout: 1h\n", `config: crowdsec.timeout: must be more than 0 and at most 10m, got 1h`},
		{"refresh before duration", "decisions:\n  duration: 24h\n", `config: decisions.refresh_before: must be 0 or more and less than decisions.duration (24h), got 24h`},

		// allowlist, state_file, log_level.
		{"cidr bad prefix length", "allowlist:\n  cidrs: [10.0.0.0/8, 192.0.2.1, 10.0.0.0/33]\n", `config: allowlist.cidrs[2]: want a CIDR or an IP address, got "10.0.0.0/33"`},
		{"cidr not an address", "allowlist:\n  cidrs: [example.org]\n", `config: allowlist.cidrs[0]: want a CIDR or an IP address, got "example.org"`},
		{"cidr with zone", "allowlist:\n  cidrs: [\"fe80::1%eth0\"]\n", `config: allowlist.cidrs[0]: want a CIDR or an IP address, got "fe80::1%eth0"`},
		{"cidr null item", "allowlist:\n  cidrs: [~]\n", `config: allowlist.cidrs[0]: want a CIDR or an IP address, got ""`},
		{"state file empty", "state_file: \"\"\n", `config: state_file: required`},
		{"state file relative", "state_file: state.json\n", `config: state_file: must be an absolute path, got "state.json"`},
		{"log level", "log_level: verbose\n", `config: log_level: want one of trace, debug, info, warn, error, fatal, panic, got "verbose"`},

		// bouncer and mirror: two readers of LAPI's stream on one key.
		{"mirror reads with the bouncer's key", "bouncer:\n  enabled: true\n  api_key: TOPSECRET-lapi-key\n" +
			"mirror:\n  enabled: true\n  lapi_key: TOPSECRET-lapi-key\n  keys: [{name: k1, key: TOPSECRET-client-key-1}]\n",
			`config: mirror.lapi_key: must differ from bouncer.api_key: two readers of LAPI's decision stream on one key miss each other's changes (cscli bouncers add crowdsec-apiban-bridge-mirror gives the mirror its own)`},

		// All errors at once, in a stable order.
		{"collects every error", "apiban:\n  api_key: \"\"\n  set: ssh\ndecisions:\n  batch_size: 0\nlog_level: loud\n",
			"config: apiban.api_key: required (set it here or in APIBAN_API_KEY)\n" +
				"config: apiban.set: want sip, http or all, got \"ssh\"\n" +
				"config: decisions.batch_size: must be between 1 and 10000, got 0\n" +
				"config: log_level: want one of trace, debug, info, warn, error, fatal, panic, got \"loud\""},
		{"collects every shape error", "apiban:\n  max_requests: x\n  timeout: y\nfoo: 1\n",
			"config: apiban.max_requests: want an integer, got \"x\"\n" +
				"config: apiban.timeout: want a duration such as 30s, 5m or 168h, got \"y\"\n" +
				"config: unknown key \"foo\""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, "exists.pem"), "pem", 0o600)
			if err := os.Mkdir(filepath.Join(dir, "adir"), 0o700); err != nil {
				t.Fatal(err)
			}
			path := writeFile(t, filepath.Join(dir, "c.yaml"), validBase, 0o600)
			overlay := strings.ReplaceAll(tc.overlay, "{dir}", dir)
			overlay = strings.ReplaceAll(overlay, "{big}", strings.Repeat("x", 1<<20))
			writeFile(t, path+LocalSuffix, overlay, 0o600)

			c, err := LoadWith(path, noEnv)
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			if c != nil {
				t.Errorf("config returned with the error")
			}
			if want := strings.ReplaceAll(tc.want, "{dir}", dir); err.Error() != want {
				t.Errorf("error:\n%s\nwant:\n%s", err, want)
			}
			if strings.Contains(err.Error(), "TOPSECRET") {
				t.Errorf("error text shows a secret: %s", err)
			}
		})
	}
}

// TestGoodEdgeCases: values next to the limits that must pass.
func TestGoodEdgeCases(t *testing.T) {
	cases := []struct{ name, overlay string }{
		{"no pacing", "apiban:\n  max_requests: 0\n"},
		{"key of printable punctuation", "apiban:\n  api_key: \"a-B_9.~+=:!\"\n"},
		{"url with path and trailing slash", "apiban:\n  url: https://apiban.example:8443/base/\n"},
		{"one page per pass", "apiban:\n  max_pages: 1\n"},
		{"full resync off", "apiban:\n  full_resync_interval: 0\n"},
		{"full resync equal to poll", "apiban:\n  poll_interval: 10s\n  full_resync_interval: 10s\n"},
		{"no retries", "apiban:\n  max_retries: 0\n"},
		{"v1 with sip", "apiban:\n  api_version: v1\n  set: sip\n  url: http://localhost:8081\n"},
		{"v2 with all", "apiban:\n  set: all\n"},
		{"hex integer", "decisions:\n  batch_size: 0x10\n"},
		{"shortest duration", "decisions:\n  duration: 1m\n  refresh_before: 0s\n"},
		{"largest batch", "decisions:\n  batch_size: 10000\n"},
		{"captcha", "decisions:\n  type: captcha\n"},
		{"single addresses only", "decisions:\n  min_prefix_v4: 32\n  min_prefix_v6: 128\n"},
		{"widest prefixes", "decisions:\n  min_prefix_v4: 1\n  min_prefix_v6: 1\n"},
		{"flood cap", "decisions:\n  max_new_per_sync: 20000\n"},
		{"no caps", "decisions:\n  max_new_per_sync: 0\n  max_addresses_per_sync: 0\n"},
		{"short lapi timeout", "crowdsec:\n  timeout: 1s\n"},
		{"tls instead of password", "crowdsec:\n  password: \"\"\n  cert_path: {cert}\n  key_path: {key}\n  ca_cert_path: {ca}\n  lapi_url: https://lapi:8080/\n"},
		{"null keeps the default", "apiban:\n  url:\ndecisions: ~\n"},
		{"mirror and bouncer with keys of their own", "bouncer:\n  enabled: true\n  api_key: bouncer-key\n" +
			"mirror:\n  enabled: true\n  lapi_key: mirror-key\n  keys: [{name: k1, key: client-key-0123456789}]\n"},
		{"a disabled mirror may keep the bouncer's key", "bouncer:\n  enabled: true\n  api_key: bouncer-key\nmirror:\n  lapi_key: bouncer-key\n"},
		{"log level warning", "log_level: warning\n"},
		{"empty overlay", ""},
		{"comment-only overlay", "# nothing\n"},
	}
	pki := withPKI(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, "exists.pem"), "pem", 0o600)
			path := writeFile(t, filepath.Join(dir, "c.yaml"), validBase, 0o600)
			writeFile(t, path+LocalSuffix, pki.Replace(strings.ReplaceAll(tc.overlay, "{dir}", dir)), 0o600)
			if _, err := LoadWith(path, noEnv); err != nil {
				t.Fatal(err)
			}
		})
	}
}
