package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bouncer"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bouncer/bouncertest"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/config"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/lapitest"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/netns"
)

// agreeBase is a valid configuration whose every address is a closed
// loopback port, and whose start never leaves the test's directory. The
// cases add a .local overlay; {dir} is the test's directory and {cert},
// {key}, {ca} are PEM files that load.
const agreeBase = `apiban:
  api_key: TOPSECRET-apikey
  url: https://127.0.0.1:9
crowdsec:
  lapi_url: https://127.0.0.1:9/
  password: TOPSECRET-password
state_file: {dir}/state.json
prometheus:
  listen_port: 0
`

// bouncerOnlyOverlay turns APIBAN off and blanks every machine secret;
// it ends inside the crowdsec section.
const bouncerOnlyOverlay = "apiban:\n  enabled: false\n  api_key: \"\"\ncrowdsec:\n  password: \"\"\n"

// enabled turns the embedded bouncer on; cases append their keys.
const enabled = "bouncer:\n  enabled: true\n  api_key: TOPSECRET-bouncer\n"

// TestCheckAndStartRefuseAlike: one bad value per validated key of every
// section. `-t` refuses it with the exact key-named error, and a start
// (the same command without -t) refuses it with the very same text.
func TestCheckAndStartRefuseAlike(t *testing.T) {
	cases := []struct{ overlay, want string }{
		// apiban (every field of apiban.Config an operator sets).
		{"apiban:\n  api_key: TOPSECRET/def\n", `config: apiban.api_key: must be printable ASCII without spaces or '/'`},
		{"apiban:\n  api_key: \"\"\n", `config: apiban.api_key: required (set it here or in APIBAN_API_KEY)`},
		{"apiban:\n  url: https://apiban.org/?k=TOPSECRET\n", `config: apiban.url: want scheme://host[:port][/path] only, without userinfo, query or fragment`},
		{"apiban:\n  url: ftp://apiban.org\n", `config: apiban.url: want an absolute http(s) URL, got "ftp://apiban.org"`},
		{"apiban:\n  api_version: v3\n", `config: apiban.api_version: want v1 or v2, got "v3"`},
		{"apiban:\n  set: smtp\n", `config: apiban.set: want sip, http or all, got "smtp"`},
		{"apiban:\n  api_version: v1\n  set: http\n", `config: apiban.set: must be sip with API version v1, got "http"`},
		{"apiban:\n  poll_interval: 5s\n", `config: apiban.poll_interval: must be at least 10s, got 5s`},
		{"apiban:\n  max_requests: -1\n", `config: apiban.max_requests: must be 0 (no pacing) or more, got -1`},
		{"apiban:\n  max_requests: 0\n  rate_window: -1m\n", `config: apiban.rate_window: must be positive (the pacing window and the wait after a 429), got -1m`},
		{"apiban:\n  full_resync_interval: 1m\n", `config: apiban.full_resync_interval: must be 0 (off) or at least apiban.poll_interval (5m), got 1m`},
		{"apiban:\n  timeout: 0s\n", `config: apiban.timeout: must be positive, got 0s`},
		{"apiban:\n  max_retries: -1\n", `config: apiban.max_retries: must be 0 or more, got -1`},
		{"apiban:\n  max_pages: 0\n", `config: apiban.max_pages: must be 1 or more, got 0`},
		{"apiban:\n  set: sip\n  sets: [sip, http]\n", `config: apiban.sets: replaces apiban.set: give one of them, not both (remove apiban.set)`},
		{"apiban:\n  sets: [sip, smtp]\n", `config: apiban.sets[1]: want sip, http or all, got "smtp"`},
		{"apiban:\n  api_version: v1\n  sets: [http]\n", `config: apiban.sets[0]: must be sip with API version v1, got "http"`},
		{"apiban:\n  sets: [sip, sip]\n", `config: apiban.sets[1]: "sip" is listed twice`},
		{"apiban:\n  sets: [all, http]\n", `config: apiban.sets[0]: all holds sip and http already: list it alone`},
		{"apiban:\n  sets: [sip, http]\ndecisions:\n  scenario_template: apiban/list\n", `config: decisions.scenario_template: must contain {set} when apiban.sets lists several sets (each set needs its own scenario), got "apiban/list"`},

		// crowdsec.
		{"crowdsec:\n  lapi_url: localhost:8080\n", `config: crowdsec.lapi_url: want an absolute http(s) URL, got "localhost:8080"`},
		{"crowdsec:\n  login: \"\"\n", `config: crowdsec.login: required`},
		{"crowdsec:\n  password: \"\"\n", `config: crowdsec.password: required unless crowdsec.cert_path and crowdsec.key_path are set (set it here, in CROWDSEC_APIBAN_PASSWORD or through crowdsec.credentials_file)`},
		{"crowdsec:\n  cert_path: {cert}\n", `config: crowdsec.key_path: required when crowdsec.cert_path is set`},
		{"crowdsec:\n  cert_path: {dir}/junk.pem\n  key_path: {key}\n", `config: crowdsec.cert_path: does not load with crowdsec.key_path: tls: failed to find any PEM data in certificate input`},
		{"crowdsec:\n  cert_path: {cert}\n  key_path: {dir}/missing.pem\n", `config: crowdsec.key_path: stat {dir}/missing.pem: no such file or directory`},
		{"crowdsec:\n  ca_cert_path: {dir}/junk.pem\n", `config: crowdsec.ca_cert_path: no PEM certificate in "{dir}/junk.pem"`},
		{"crowdsec:\n  credentials_file: {dir}/missing.yaml\n", `config: crowdsec.credentials_file: open {dir}/missing.yaml: no such file or directory`},
		{"crowdsec:\n  timeout: 0s\n", `config: crowdsec.timeout: must be more than 0 and at most 10m, got 0s`},

		// decisions.
		{"decisions:\n  duration: 30s\n  refresh_before: 0s\n", `config: decisions.duration: must be at least 1m, got 30s`},
		{"decisions:\n  type: Ban\n", `config: decisions.type: want a lowercase word such as ban or captcha, got "Ban"`},
		{"decisions:\n  origin: api ban\n", `config: decisions.origin: must not contain whitespace, got "api ban"`},
		{"decisions:\n  scenario: \"\"\n", `config: decisions.scenario: required`},
		{"decisions:\n  batch_size: 0\n", `config: decisions.batch_size: must be between 1 and 10000, got 0`},
		{"decisions:\n  refresh_before: 168h\n", `config: decisions.refresh_before: must be 0 or more and less than decisions.duration (168h), got 168h`},
		{"decisions:\n  min_prefix_v4: 33\n", `config: decisions.min_prefix_v4: must be between 1 and 32, got 33`},
		{"decisions:\n  min_prefix_v6: 0\n", `config: decisions.min_prefix_v6: must be between 1 and 128, got 0`},
		{"decisions:\n  max_new_per_sync: -1\n", `config: decisions.max_new_per_sync: must be 0 (no cap) or more, got -1`},
		{"decisions:\n  max_addresses_per_sync: -1\n", `config: decisions.max_addresses_per_sync: must be 0 (no cap) or more, got -1`},

		// allowlist, state_file.
		{"allowlist:\n  cidrs: [example.org]\n", `config: allowlist.cidrs[0]: want a CIDR or an IP address, got "example.org"`},
		{"state_file: state.json\n", `config: state_file: must be an absolute path, got "state.json"`},

		// logging.
		{"log_level: verbose\n", `config: log_level: want one of trace, debug, info, warn, error, fatal, panic, got "verbose"`},
		{"log_mode: syslog\n", `config: log_mode: want stdout or file, got "syslog"`},
		{"log_mode: file\nlog_dir: logs\n", `config: log_dir: must be an absolute directory with log_mode file, got "logs"`},
		{"log_max_size: -1\n", `config: log_max_size: must be 0 or more, got -1`},
		{"log_max_backups: -1\n", `config: log_max_backups: must be 0 or more, got -1`},
		{"log_max_age: -1\n", `config: log_max_age: must be 0 or more, got -1`},

		// prometheus.
		{"prometheus:\n  listen_addr: localhost\n", `config: prometheus.listen_addr: want an IP address such as 127.0.0.1, got "localhost"`},
		{"prometheus:\n  listen_port: 65536\n", `config: prometheus.listen_port: want a port between 0 and 65535, got 65536`},

		// bouncer.
		{"bouncer:\n  enabled: true\n", `config: bouncer.api_key: required when bouncer.enabled is true, unless bouncer.cert_path and bouncer.key_path are set (cscli bouncers add NAME gives one)`},
		{"bouncer:\n  enabled: true\n  api_key: TOPSECRET with space\n", `config: bouncer.api_key: must not contain whitespace`},
		{enabled + "  cert_path: {cert}\n  key_path: {key}\n", `config: bouncer.api_key: must be empty when bouncer.cert_path and bouncer.key_path are set: a bouncer authenticates with a key or a certificate, not both`},
		{"bouncer:\n  enabled: true\n  cert_path: {dir}/junk.pem\n  key_path: {key}\n", `config: bouncer.cert_path: does not load with bouncer.key_path: tls: failed to find any PEM data in certificate input`},
		{enabled + "  ca_cert_path: {dir}/missing.pem\n", `config: bouncer.ca_cert_path: stat {dir}/missing.pem: no such file or directory`},
		{enabled + "  lapi_url: localhost:8080\n", `config: bouncer.lapi_url: want an absolute http(s) URL, got "localhost:8080"`},
		{enabled + "  update_frequency: 500ms\n", `config: bouncer.update_frequency: must be at least 1s, got 500ms`},
		{enabled + "  origins: [\"apiban,cscli\"]\n", `config: bouncer.origins[0]: want an origin such as apiban, crowdsec or cscli, got "apiban,cscli"`},
		{enabled + "  mode: iptables\n", `config: bouncer.mode: want nftables or ipset, got "iptables"`},
		{enabled + "  table: crowdsec\n", `config: bouncer.table: "crowdsec" is another program's object; the bouncer deletes and flushes its own objects: choose another name`},
		{enabled + "  set_prefix: apiban-bridge-0123456789\n", `config: bouncer.set_prefix: want a name of letters, digits, - and _ (at most 23, starting with a letter), got "apiban-bridge-0123456789"`},
		{enabled + "  chain: crowdsec-chain\n", `config: bouncer.chain: must not start with "crowdsec-chain" (another program's objects), got "crowdsec-chain"`},
		{enabled + "  iptables_chain: CROWDSEC_CHAIN\n", `config: bouncer.iptables_chain: "CROWDSEC_CHAIN" is another program's object; the bouncer deletes and flushes its own objects: choose another name`},
		{enabled + "  hooks: [output]\n", `config: bouncer.hooks[0]: want input or forward, got "output"`},
		{enabled + "  metrics_interval: 30s\n", `config: bouncer.metrics_interval: must be 0 (none) or at least 1m, got 30s`},
		{enabled + "  priority: 5000\n", `config: bouncer.priority: must be between -1000 and 1000, got 5000`},

		// mirror, and the mirror beside the bouncer.
		{"mirror:\n  enabled: true\n  lapi_key: mirror-lapi-key-0123\n", `config: mirror.keys: at least one key is required when mirror.enabled is true`},
		{enabled + "mirror:\n  enabled: true\n  lapi_key: TOPSECRET-bouncer\n  keys: [{name: k1, key: client-key-0123456789}]\n",
			`config: mirror.lapi_key: must differ from bouncer.api_key: two readers of LAPI's decision stream on one key miss each other's changes (cscli bouncers add crowdsec-apiban-bridge-mirror gives the mirror its own)`},

		// bouncer-only mode (apiban.enabled false): the bouncer is required,
		// the machine's credentials are not, and the LAPI URL still is.
		{"apiban:\n  enabled: false\n", `config: apiban.enabled: false runs only the embedded bouncer, so bouncer.enabled must be true (nothing would run)`},
		{bouncerOnlyOverlay + "  lapi_url: localhost:8080\n" + enabled, `config: crowdsec.lapi_url: want an absolute http(s) URL, got "localhost:8080"`},
		{bouncerOnlyOverlay + enabled + "  update_frequency: 500ms\n", `config: bouncer.update_frequency: must be at least 1s, got 500ms`},
		{bouncerOnlyOverlay + "mirror:\n  enabled: true\n  lapi_key: mirror-lapi-key-0123\n  keys: [{name: k1, key: client-key-0123456789}]\n" + enabled,
			`config: mirror.enabled: the mirror does not run in bouncer-only mode (apiban.enabled false): run it on the bridge's host`},

		// The shape of the file.
		{"apiban:\n  api_verison: v2\n", `config: unknown key "apiban.api_verison"`},
		{"decisions:\n  batch_size: many\n", `config: decisions.batch_size: want an integer, got "many"`},
	}
	pki := agreePKI(t)
	canceled, cancel := context.WithCancel(context.Background())
	cancel() // a start that got past the configuration ends at once
	for _, tc := range cases {
		name := strings.TrimSpace(strings.ReplaceAll(tc.overlay, "\n", " "))
		t.Run(name, func(t *testing.T) {
			path, dir := agreeFiles(t, pki, tc.overlay)
			want := strings.ReplaceAll(tc.want, "{dir}", dir) + "\n"

			code, stdout, check := runCaptured(canceled, "-t", "-c", path)
			if code != 1 || stdout != "" || check != want {
				t.Fatalf("-t: exit %d, stdout %q, stderr:\n%s\nwant exit 1 and:\n%s", code, stdout, check, want)
			}
			code, _, start := runCaptured(canceled, "-c", path)
			if code != 1 || start != check {
				t.Fatalf("start: exit %d, stderr:\n%s\nwant exit 1 and what -t said:\n%s", code, start, check)
			}
			if strings.Contains(check, "TOPSECRET") {
				t.Fatalf("a secret in the error: %s", check)
			}
		})
	}
}

// TestStartAcceptsWhatCheckAccepts: values at the edge of what `-t`
// accepts, for every section, pass `-t` and then every constructor a
// start calls with them: the APIBAN and LAPI clients and the engine
// (wire), the bouncer's backend and its LAPI stream client. The feed
// client checks nothing config checked, so a value it would have refused
// before (api_key "abc/def") cannot pass `-t` and then fail here.
func TestStartAcceptsWhatCheckAccepts(t *testing.T) {
	cases := []string{
		"",
		"apiban:\n  api_key: \"abc-DEF_123.~+=:!\"\n  url: https://127.0.0.1:9/base/\n",
		"apiban:\n  api_version: v1\n  set: sip\n  max_requests: 0\n  max_retries: 0\n  max_pages: 1\n",
		"apiban:\n  set: all\n  poll_interval: 10s\n  rate_window: 1ms\n  timeout: 1ms\n  full_resync_interval: 0s\n",
		"apiban:\n  set: http\n  poll_interval: 1h\n  full_resync_interval: 1h\n",
		"crowdsec:\n  password: \"\"\n  cert_path: {cert}\n  key_path: {key}\n  ca_cert_path: {ca}\n  timeout: 10m\n",
		"crowdsec:\n  lapi_url: http://127.0.0.1:9\n  timeout: 1ms\n",
		"decisions:\n  duration: 1m\n  refresh_before: 0s\n  batch_size: 1\n  min_prefix_v4: 32\n  min_prefix_v6: 128\n  max_new_per_sync: 0\n  max_addresses_per_sync: 0\n",
		"decisions:\n  batch_size: 10000\n  type: captcha\n  min_prefix_v4: 1\n  min_prefix_v6: 1\n",
		"allowlist:\n  cidrs: [192.0.2.1, 10.0.0.1/8, \"::ffff:198.51.100.1\"]\n  lapi_allowlists: false\n",
		"log_level: trace\nlog_max_size: 0\nlog_max_backups: 0\nlog_max_age: 0\n",
		"prometheus:\n  enabled: false\n  listen_addr: nonsense\n",
		enabled + "  update_frequency: 1s\n  metrics_interval: 0s\n  origins: [apiban, cscli]\n  priority: -1000\n  hooks: [input, forward]\n",
		"bouncer:\n  enabled: true\n  cert_path: {cert}\n  key_path: {key}\n  ca_cert_path: {dir}/junk.pem\n  lapi_url: https://127.0.0.1:9\n",
		enabled + "  table: a\n  set_prefix: abcdefghijklmnopqrstuvw\n  chain: a\n  metrics_interval: 1m\n  priority: 1000\n",
		enabled + "  mode: ipset\n  set_prefix: abcdefghijklmnopqrstuvw\n  iptables_chain: ABCDEFGHIJKLMNOPQRSTUVWXYZ01\n",
		bouncerOnlyOverlay + enabled,
		bouncerOnlyOverlay + "  login: \"\"\n  timeout: 0s\n" + enabled + "  lapi_url: http://127.0.0.1:9\n",
	}
	pki := agreePKI(t)
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, overlay := range cases {
		name := strings.TrimSpace(strings.ReplaceAll(overlay, "\n", " "))
		t.Run(name, func(t *testing.T) {
			path, _ := agreeFiles(t, pki, overlay)
			code, stdout, stderr := runCaptured(canceled, "-t", "-c", path)
			if code != 0 || stdout != path+": configuration OK\n" {
				t.Fatalf("-t: exit %d, stdout %q, stderr:\n%s", code, stdout, stderr)
			}
			cfg, err := config.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := startParts(t, canceled, cfg); err != nil {
				t.Fatalf("-t accepted, start refuses: %v", err)
			}
			if cfg.Bouncer.Enabled {
				return // a whole start would load the host's firewall
			}
			code, _, stderr = runCaptured(canceled, "-c", path)
			if code != 0 || errorLine.MatchString(stderr) {
				t.Fatalf("start: exit %d, stderr:\n%s", code, stderr)
			}
		})
	}
}

// errorLine is a log line at error level or worse.
var errorLine = regexp.MustCompile(`(?m)level=(error|fatal|panic)`)

// startParts calls what a start calls after config.Load, without running
// anything: wire (the feed, the LAPI client, the engine) and, when the
// bouncer is enabled, its backend (an ipset one inside a namespace of the
// test's) and its LAPI stream client, which go-cs-bouncer builds and
// checks in Run; ctx is canceled, so Run ends there.
func startParts(t *testing.T, ctx context.Context, cfg *config.Config) error {
	log := logrus.New()
	log.SetOutput(io.Discard)
	logrus.SetOutput(io.Discard) // go-cs-bouncer logs to the global logger
	if !cfg.APIBAN.Enabled {
		// bouncer-only: no engine is wired
	} else if _, err := wire(ctx, cfg, neverBan(ctx, cfg, log), true, log); err != nil {
		return err
	}
	if !cfg.Bouncer.Enabled {
		return nil
	}
	var err error
	open := func() {
		var b bouncer.Backend
		if b, err = newBackend(cfg.Bouncer); err == nil {
			err = b.Close()
		}
	}
	if cfg.Bouncer.Mode == "ipset" {
		netns.Require(t)
		netns.New(t, "agree").Do(t, open)
	} else {
		open()
	}
	if err != nil {
		return err
	}
	return bouncer.New(bouncertest.NewRecorder(true), bouncerOptions(cfg, log)).Run(ctx) // Run ends before its first tick
}

// agreePKI writes PEM files that load and returns the replacer of their
// placeholders.
func agreePKI(t *testing.T) *strings.Replacer {
	t.Helper()
	f, err := lapitest.WritePKI(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return strings.NewReplacer("{cert}", f.AgentCert, "{key}", f.AgentKey, "{ca}", f.CA)
}

// agreeFiles writes agreeBase and the overlay (and junk.pem, a file that
// is no PEM) into a fresh directory.
func agreeFiles(t *testing.T, pki *strings.Replacer, overlay string) (path, dir string) {
	t.Helper()
	dir = t.TempDir()
	path = filepath.Join(dir, "c.yaml")
	for name, text := range map[string]string{
		"c.yaml":       agreeBase,
		"c.yaml.local": overlay,
		"junk.pem":     "not a certificate",
	} {
		text = strings.ReplaceAll(pki.Replace(text), "{dir}", dir)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return path, dir
}

// runCaptured is the command as main runs it.
func runCaptured(ctx context.Context, args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(ctx, args, &out, &errb)
	return code, out.String(), errb.String()
}
