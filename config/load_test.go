package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
)

// withSecrets is Default() as a load with the two secrets gives it.
func withSecrets(key, password string) *Config {
	c := Default()
	c.APIBAN.APIKey = key
	c.CrowdSec.Password = password
	return c
}

func mustEqual(t *testing.T, got, want *Config) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("config:\n%#v\nwant:\n%#v", *got, *want)
	}
}

func TestTemplateLoadsToDefaults(t *testing.T) {
	env := envOf(map[string]string{EnvAPIKey: secretKey, EnvPassword: secretPassword})
	c, err := LoadBytes(Template, env)
	if err != nil {
		t.Fatal(err)
	}
	mustEqual(t, c, withSecrets(secretKey, secretPassword))
}

func TestTemplateFileIsEmbedded(t *testing.T) {
	onDisk, err := os.ReadFile("crowdsec-apiban-bridge.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if string(onDisk) != string(Template) {
		t.Error("Template differs from crowdsec-apiban-bridge.yaml")
	}
	for _, ref := range []string{"${APIBAN_API_KEY}", "${CROWDSEC_APIBAN_PASSWORD}"} {
		if !strings.Contains(string(Template), ref) {
			t.Errorf("template lacks %s", ref)
		}
	}
}

// Every key of the Config must appear in the template, so the template
// documents them all.
func TestTemplateSpellsOutEveryKey(t *testing.T) {
	raw, err := parseYAML("template", Template)
	if err != nil {
		t.Fatal(err)
	}
	var walk func(prefix string, tree map[string]any, typ reflect.Type)
	walk = func(prefix string, tree map[string]any, typ reflect.Type) {
		for name, f := range fieldsByKey(typ) {
			key := joinKey(prefix, name)
			v, ok := tree[name]
			if !ok {
				t.Errorf("template lacks %s", key)
				continue
			}
			if sub, isMap := v.(map[string]any); isMap {
				walk(key, sub, f.Type)
			}
		}
	}
	walk("", raw, reflect.TypeFor[Config]())
}

func TestTemplateWithoutSecretsFails(t *testing.T) {
	_, err := LoadBytes(Template, noEnv)
	want := "config: apiban.api_key: required (set it here or in APIBAN_API_KEY)\n" +
		"config: crowdsec.password: required unless crowdsec.cert_path and crowdsec.key_path are set " +
		"(set it here, in CROWDSEC_APIBAN_PASSWORD or through crowdsec.credentials_file)"
	if err == nil || err.Error() != want {
		t.Fatalf("error:\n%v\nwant:\n%s", err, want)
	}
}

func TestDefaultsApplied(t *testing.T) {
	path := writeFile(t, filepath.Join(t.TempDir(), "c.yaml"), validBase, 0o600)
	c, err := LoadWith(path, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	mustEqual(t, c, withSecrets(secretKey, secretPassword))

	// Spelled out, so that a change to Default() is a deliberate one.
	d := Default()
	checks := []struct {
		key       string
		got, want any
	}{
		{"apiban.url", d.APIBAN.URL, "https://apiban.org"},
		{"apiban.api_version", d.APIBAN.APIVersion, "v2"},
		{"apiban.set", d.APIBAN.Set, "sip"},
		{"apiban.poll_interval", d.APIBAN.PollInterval, 5 * time.Minute},
		{"apiban.max_requests", d.APIBAN.MaxRequests, 10},
		{"apiban.rate_window", d.APIBAN.RateWindow, 2 * time.Minute},
		{"apiban.full_resync_interval", d.APIBAN.FullResyncInterval, 168 * time.Hour},
		{"apiban.timeout", d.APIBAN.Timeout, 30 * time.Second},
		{"apiban.max_retries", d.APIBAN.MaxRetries, 5},
		{"apiban.max_pages", d.APIBAN.MaxPages, 400},
		{"crowdsec.lapi_url", d.CrowdSec.LAPIURL, "http://127.0.0.1:8080/"},
		{"crowdsec.login", d.CrowdSec.Login, "crowdsec-apiban-bridge"},
		{"crowdsec.timeout", d.CrowdSec.Timeout, 30 * time.Second},
		{"decisions.max_new_per_sync", d.Decisions.MaxNewPerSync, 25_000},
		{"decisions.max_addresses_per_sync", d.Decisions.MaxAddressesPerSync, 1 << 20},
		{"decisions.duration", d.Decisions.Duration, 168 * time.Hour},
		{"decisions.type", d.Decisions.Type, "ban"},
		{"decisions.origin", d.Decisions.Origin, "apiban"},
		{"decisions.scenario", d.Decisions.Scenario, "apiban/sip-blocklist"},
		{"decisions.batch_size", d.Decisions.BatchSize, 1000},
		{"decisions.refresh_before", d.Decisions.RefreshBefore, 24 * time.Hour},
		{"allowlist.cidrs", d.Allowlist.CIDRs, []string{}},
		{"allowlist.lapi_allowlists", d.Allowlist.LAPIAllowlists, true},
		{"state_file", d.StateFile, "/var/lib/crowdsec-apiban-bridge/state.json"},
		{"log_level", d.LogLevel, "info"},
		{"Level", d.Level, logrus.InfoLevel},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("default %s = %v, want %v", c.key, c.got, c.want)
		}
	}
}

func TestDefaultIsFresh(t *testing.T) {
	a := Default()
	a.Allowlist.CIDRs = append(a.Allowlist.CIDRs, "10.0.0.0/8")
	if b := Default(); len(b.Allowlist.CIDRs) != 0 {
		t.Error("Default shares its slices between calls")
	}
}

func TestEmptyFileGivesDefaults(t *testing.T) {
	env := envOf(map[string]string{EnvAPIKey: "k", EnvPassword: "p"})
	for _, text := range []string{"", "# only a comment\n", "~\n", "---\n"} {
		c, err := LoadBytes([]byte(text), env)
		if err != nil {
			t.Fatalf("%q: %v", text, err)
		}
		mustEqual(t, c, withSecrets("k", "p"))
	}
}

func TestExpand(t *testing.T) {
	env := envOf(map[string]string{"A": "x", "B_2": "y"})
	got := string(expand([]byte("${A} ${B_2} [${UNSET}] $A ${bad-name} ${} $${A} ${A"), env))
	want := "x y [] $A ${bad-name} ${} $x ${A"
	if got != want {
		t.Errorf("expand = %q, want %q", got, want)
	}
}

func TestExpandInLoad(t *testing.T) {
	text := validBase + "state_file: /var/lib/${SUB}/state.json\nlog_level: ${LEVEL}\ndecisions:\n  origin: ${UNSET}\n"
	c, err := LoadBytes([]byte(text), envOf(map[string]string{"SUB": "bridge", "LEVEL": "debug"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.StateFile != "/var/lib/bridge/state.json" {
		t.Errorf("state_file = %q", c.StateFile)
	}
	if c.Level != logrus.DebugLevel {
		t.Errorf("level = %v", c.Level)
	}
	// An unset variable leaves the key empty (null), so the default holds.
	if c.Decisions.Origin != "apiban" {
		t.Errorf("origin = %q", c.Decisions.Origin)
	}
}

// Secrets keep their exact text even when YAML would read a number, and a
// bare $ in them is not an expansion.
func TestSecretsKeepTheirText(t *testing.T) {
	for _, s := range []string{"0123", "1e5", "0x1F", "true", "pa$word", "12345678901234567890123"} {
		text := fmt.Sprintf("apiban:\n  api_key: %s\ncrowdsec:\n  password: %s\n", s, s)
		c, err := LoadBytes([]byte(text), noEnv)
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		if c.APIBAN.APIKey != s || c.CrowdSec.Password != s {
			t.Errorf("%s: api_key %q, password %q", s, c.APIBAN.APIKey, c.CrowdSec.Password)
		}
	}
}

func TestEnvOverrides(t *testing.T) {
	text := "apiban:\n  api_key: file-key\ncrowdsec:\n  password: file-password\n"
	cases := []struct {
		name               string
		env                map[string]string
		wantKey, wantPassw string
	}{
		{"file only", nil, "file-key", "file-password"},
		{"env wins", map[string]string{EnvAPIKey: "env-key", EnvPassword: "env-password"}, "env-key", "env-password"},
		{"empty env does not override", map[string]string{EnvAPIKey: "", EnvPassword: ""}, "file-key", "file-password"},
		{"each on its own", map[string]string{EnvPassword: "env-password"}, "file-key", "env-password"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := LoadBytes([]byte(text), envOf(tc.env))
			if err != nil {
				t.Fatal(err)
			}
			if c.APIBAN.APIKey != tc.wantKey || c.CrowdSec.Password != tc.wantPassw {
				t.Errorf("api_key %q, password %q; want %q, %q", c.APIBAN.APIKey, c.CrowdSec.Password, tc.wantKey, tc.wantPassw)
			}
		})
	}
}

func TestOverlay(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.yaml")
	writeFile(t, path, `apiban:
  api_key: TOPSECRET-apikey-7f3a
  poll_interval: 10m
  url: https://mirror.example
crowdsec:
  password: TOPSECRET-password-91c2
  login: base-login
allowlist:
  cidrs: [10.0.0.0/8, 192.0.2.1]
`, 0o600)
	writeFile(t, path+LocalSuffix, `apiban:
  poll_interval: 15m
crowdsec:
  password: local-password
allowlist:
  cidrs: [198.51.100.0/24]
log_level: debug
`, 0o600)
	c, err := LoadWith(path, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	want := withSecrets(secretKey, "local-password")
	want.APIBAN.PollInterval = 15 * time.Minute        // overlay wins
	want.APIBAN.URL = "https://mirror.example"         // base kept: maps merge
	want.CrowdSec.Login = "base-login"                 // base kept beside an overlaid key
	want.Allowlist.CIDRs = []string{"198.51.100.0/24"} // lists are replaced
	want.Allowlist.Prefixes = []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}
	want.LogLevel, want.Level = "debug", logrus.DebugLevel
	mustEqual(t, c, want)

	// The environment still overrides the overlay.
	c, err = LoadWith(path, envOf(map[string]string{EnvPassword: "env-password"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.CrowdSec.Password != "env-password" {
		t.Errorf("password = %q, want the environment's", c.CrowdSec.Password)
	}
}

func TestOverlayExpandsVariables(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, filepath.Join(dir, "c.yaml"), validBase, 0o600)
	writeFile(t, path+LocalSuffix, "decisions:\n  origin: ${ORIGIN}\n", 0o600)
	c, err := LoadWith(path, envOf(map[string]string{"ORIGIN": "apiban-test"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Decisions.Origin != "apiban-test" {
		t.Errorf("origin = %q", c.Decisions.Origin)
	}
}

func TestOverlayThatIsADirectory(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, filepath.Join(dir, "c.yaml"), validBase, 0o600)
	if err := os.Mkdir(path+LocalSuffix, 0o700); err != nil {
		t.Fatal(err)
	}
	_, err := LoadWith(path, noEnv)
	if want := "config: " + path + ".local: is a directory"; err == nil || err.Error() != want {
		t.Fatalf("error %v, want %s", err, want)
	}
}

func TestMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing.yaml")
	_, err := LoadWith(path, noEnv)
	if want := "config: open " + path + ": no such file or directory"; err == nil || err.Error() != want {
		t.Fatalf("error %v, want %s", err, want)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Error("error does not wrap fs.ErrNotExist")
	}
}

func TestBadYAMLInBase(t *testing.T) {
	path := writeFile(t, filepath.Join(t.TempDir(), "c.yaml"), "apiban:\n  api_key: TOPSECRET\n  bad: [\n", 0o600)
	_, err := LoadWith(path, noEnv)
	want := "config: " + path + ": yaml: line 3: did not find expected node content"
	if err == nil || err.Error() != want {
		t.Fatalf("error %v, want %s", err, want)
	}
}

func TestLoadBytesErrors(t *testing.T) {
	_, err := LoadBytes([]byte("a: [\n"), noEnv)
	if want := "config: <bytes>: yaml: line 1: did not find expected node content"; err == nil || err.Error() != want {
		t.Fatalf("error %v, want %s", err, want)
	}
}

func TestCredentialsFile(t *testing.T) {
	const credPassword = "TOPSECRET-cscli-password"
	creds := "url: http://10.0.0.1:8080\nlogin: from-cscli\npassword: " + credPassword + "\n"

	load := func(t *testing.T, main, credText string, credMode os.FileMode, env map[string]string) (*Config, string, error) {
		t.Helper()
		dir := t.TempDir()
		credPath := filepath.Join(dir, "creds.yaml")
		if credText != "" {
			writeFile(t, credPath, credText, credMode)
		}
		main = strings.ReplaceAll(main, "{creds}", credPath)
		path := writeFile(t, filepath.Join(dir, "c.yaml"), main, 0o600)
		c, err := LoadWith(path, envOf(env))
		return c, credPath, err
	}
	const main = "apiban:\n  api_key: k\ncrowdsec:\n  credentials_file: {creds}\n"

	t.Run("supplies login, password and url", func(t *testing.T) {
		c, _, err := load(t, main, creds, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		cs := c.CrowdSec
		if cs.Login != "from-cscli" || cs.Password != credPassword || cs.LAPIURL != "http://10.0.0.1:8080" {
			t.Errorf("login %q, password %q, lapi_url %q", cs.Login, cs.Password, cs.LAPIURL)
		}
		if len(c.Warnings) != 0 {
			t.Errorf("warnings: %q", c.Warnings)
		}
	})
	t.Run("explicit lapi_url wins", func(t *testing.T) {
		c, _, err := load(t, main+"  lapi_url: https://lapi.example/\n  login: from-config\n  password: from-config\n", creds, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		cs := c.CrowdSec
		if cs.LAPIURL != "https://lapi.example/" || cs.Login != "from-cscli" || cs.Password != credPassword {
			t.Errorf("login %q, password %q, lapi_url %q", cs.Login, cs.Password, cs.LAPIURL)
		}
	})
	t.Run("environment password wins", func(t *testing.T) {
		c, _, err := load(t, main, creds, 0o600, map[string]string{EnvPassword: "env-password"})
		if err != nil {
			t.Fatal(err)
		}
		if c.CrowdSec.Password != "env-password" || c.CrowdSec.Login != "from-cscli" {
			t.Errorf("login %q, password %q", c.CrowdSec.Login, c.CrowdSec.Password)
		}
	})
	t.Run("url is optional", func(t *testing.T) {
		c, _, err := load(t, main, "login: m\npassword: p\n", 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		if c.CrowdSec.LAPIURL != Default().CrowdSec.LAPIURL {
			t.Errorf("lapi_url = %q", c.CrowdSec.LAPIURL)
		}
	})
	t.Run("group-readable file warns", func(t *testing.T) {
		c, credPath, err := load(t, main, creds, 0o640, nil)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{credPath + " holds a password but is readable by group or others (mode 0640); run chmod 600 " + credPath}
		if !reflect.DeepEqual(c.Warnings, want) {
			t.Errorf("warnings %q, want %q", c.Warnings, want)
		}
	})

	bad := []struct {
		name, text, want string
	}{
		{"missing file", "", "config: crowdsec.credentials_file: open {creds}: no such file or directory"},
		{"missing login", "url: http://x\npassword: " + credPassword + "\n", `config: crowdsec.credentials_file: {creds}: missing key "login"`},
		{"missing password", "url: http://x\nlogin: m\n", `config: crowdsec.credentials_file: {creds}: missing key "password"`},
		{"empty password", "login: m\npassword: \"\"\n", `config: crowdsec.credentials_file: {creds}: missing key "password"`},
		{"empty file", "# nothing\n",
			"config: crowdsec.credentials_file: {creds}: missing key \"login\"\nconfig: crowdsec.credentials_file: {creds}: missing key \"password\""},
		{"password is a mapping", "login: m\npassword: {x: " + credPassword + "}\n", `config: crowdsec.credentials_file: {creds}: password: want a string, got a mapping`},
		{"broken yaml", "password: " + credPassword + "\nlogin: [m\n", `config: crowdsec.credentials_file: {creds}: yaml: line 1: did not find expected ',' or ']'`},
		{"not a mapping", credPassword + "\n", `config: crowdsec.credentials_file: {creds}: want a mapping of keys at the top level, got a string`},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, credPath, err := load(t, main, tc.text, 0o600, nil)
			if err == nil {
				t.Fatal("no error")
			}
			if want := strings.ReplaceAll(tc.want, "{creds}", credPath); err.Error() != want {
				t.Errorf("error:\n%s\nwant:\n%s", err, want)
			}
			if strings.Contains(err.Error(), "TOPSECRET") {
				t.Errorf("error shows the password: %s", err)
			}
		})
	}

	// Credentials errors are collected with the validation errors.
	t.Run("collected with other errors", func(t *testing.T) {
		_, credPath, err := load(t, main+"log_level: loud\n", "", 0, nil)
		want := "config: crowdsec.credentials_file: open " + credPath + ": no such file or directory\n" +
			"config: log_level: want one of trace, debug, info, warn, error, fatal, panic, got \"loud\""
		if err == nil || err.Error() != want {
			t.Errorf("error:\n%v\nwant:\n%s", err, want)
		}
	})
}

func TestPermissionWarnings(t *testing.T) {
	env := envOf(map[string]string{EnvAPIKey: "env-key", EnvPassword: "env-password"})
	cases := []struct {
		name      string
		text      string
		mode      os.FileMode
		overlay   string // written at 0644 when set
		wantWarns []string
	}{
		{"0600 with secrets", validBase, 0o600, "", nil},
		{"0400 with secrets", validBase, 0o400, "", nil},
		{"0644 with secrets", validBase, 0o644, "", []string{
			"{path} holds apiban.api_key and crowdsec.password but is readable by group or others (mode 0644); run chmod 600 {path}"}},
		{"0640 with one secret", "apiban:\n  api_key: k\n", 0o640, "", []string{
			"{path} holds apiban.api_key but is readable by group or others (mode 0640); run chmod 600 {path}"}},
		{"0604 with one secret", "crowdsec:\n  password: p\n", 0o604, "", []string{
			"{path} holds crowdsec.password but is readable by group or others (mode 0604); run chmod 600 {path}"}},
		{"0644 with references only", string(Template), 0o644, "", nil},
		{"0644 with a secret around a reference", "apiban:\n  api_key: abc${X}\n", 0o644, "", []string{
			"{path} holds apiban.api_key but is readable by group or others (mode 0644); run chmod 600 {path}"}},
		{"0644 without secrets", "log_level: debug\n", 0o644, "", nil},
		{"0644 overlay with a secret", "log_level: debug\n", 0o600, "crowdsec:\n  password: p\n", []string{
			"{path}.local holds crowdsec.password but is readable by group or others (mode 0644); run chmod 600 {path}.local"}},
		{"0644 overlay without secrets", validBase, 0o600, "log_level: debug\n", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, filepath.Join(t.TempDir(), "c.yaml"), tc.text, tc.mode)
			if tc.overlay != "" {
				writeFile(t, path+LocalSuffix, tc.overlay, 0o644)
			}
			c, err := LoadWith(path, env)
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, w := range tc.wantWarns {
				want = append(want, strings.ReplaceAll(w, "{path}", path))
			}
			if !reflect.DeepEqual(c.Warnings, want) {
				t.Errorf("warnings %q, want %q", c.Warnings, want)
			}
			for _, w := range c.Warnings {
				if strings.Contains(w, "TOPSECRET") {
					t.Errorf("warning shows a secret: %s", w)
				}
			}
		})
	}
}

func TestAllowlistPrefixes(t *testing.T) {
	text := validBase + `allowlist:
  cidrs:
    - 10.1.2.3/8
    - 192.0.2.1
    - 2001:db8::1
    - 2001:db8::/32
    - "::ffff:198.51.100.7"
    - "::ffff:203.0.113.0/120"
`
	c, err := LoadBytes([]byte(text), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("192.0.2.1/32"),
		netip.MustParsePrefix("2001:db8::1/128"),
		netip.MustParsePrefix("2001:db8::/32"),
		netip.MustParsePrefix("198.51.100.7/32"),
		netip.MustParsePrefix("203.0.113.0/24"),
	}
	if !reflect.DeepEqual(c.Allowlist.Prefixes, want) {
		t.Errorf("prefixes %v, want %v", c.Allowlist.Prefixes, want)
	}
	wantWarns := []string{`allowlist.cidrs[0]: "10.1.2.3/8" has host bits set; using 10.0.0.0/8`}
	if !reflect.DeepEqual(c.Warnings, wantWarns) {
		t.Errorf("warnings %q, want %q", c.Warnings, wantWarns)
	}
}

func TestLogLevels(t *testing.T) {
	for text, want := range map[string]logrus.Level{
		"trace": logrus.TraceLevel, "debug": logrus.DebugLevel, "info": logrus.InfoLevel,
		"warn": logrus.WarnLevel, "warning": logrus.WarnLevel, "error": logrus.ErrorLevel,
		"fatal": logrus.FatalLevel, "panic": logrus.PanicLevel, "DEBUG": logrus.DebugLevel,
	} {
		c, err := LoadBytes([]byte(validBase+"log_level: "+text+"\n"), noEnv)
		if err != nil {
			t.Fatalf("%s: %v", text, err)
		}
		if c.Level != want || c.LogLevel != text {
			t.Errorf("%s: level %v, want %v", text, c.Level, want)
		}
	}
}

func TestRedacted(t *testing.T) {
	text := `apiban:
  api_key: TOPSECRET-apikey-7f3a
  poll_interval: 1h30m
  max_requests: 0
crowdsec:
  password: TOPSECRET-password-91c2
decisions:
  type: captcha
allowlist:
  cidrs: [192.0.2.0/24, 2001:db8::/32]
log_level: debug
`
	c, err := LoadBytes([]byte(text), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	out := c.Redacted()
	if strings.Contains(out, "TOPSECRET") {
		t.Fatalf("Redacted shows a secret:\n%s", out)
	}
	for _, line := range []string{"  api_key: " + Masked + "\n", "  password: " + Masked + "\n", "  poll_interval: 1h30m\n", "  full_resync_interval: 168h\n"} {
		if !strings.Contains(out, line) {
			t.Errorf("Redacted lacks %q:\n%s", line, out)
		}
	}
	if c.String() != out {
		t.Error("String differs from Redacted")
	}

	// The output is a valid configuration: with the secrets given back
	// through the environment it loads to the same Config.
	env := envOf(map[string]string{EnvAPIKey: secretKey, EnvPassword: secretPassword})
	again, err := LoadBytes([]byte(out), env)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	mustEqual(t, again, c)

	// Unset secrets show as empty, so a debug dump tells set from unset.
	if out := Default().Redacted(); !strings.Contains(out, "  api_key: \"\"\n") {
		t.Errorf("unset api_key not shown as empty:\n%s", out)
	}
}

// Printing the config or its secret-holding sections never leaks.
func TestFormattingNeverLeaks(t *testing.T) {
	c, err := LoadBytes([]byte(validBase), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{
		fmt.Sprint(c), fmt.Sprint(*c), fmt.Sprintf("%+v", c), fmt.Sprintf("%v", c.APIBAN),
		fmt.Sprintf("%+v", c.CrowdSec), fmt.Sprintf("%s", &c.CrowdSec), c.CrowdSec.String(),
	} {
		if strings.Contains(s, "TOPSECRET") {
			t.Errorf("formatted config shows a secret: %s", s)
		}
		if !strings.Contains(s, Masked) {
			t.Errorf("formatted config does not show the mask: %s", s)
		}
	}
	want := "{lapi_url: 'http://127.0.0.1:8080/', login: crowdsec-apiban-bridge, password: <redacted>, credentials_file: \"\", " +
		"cert_path: \"\", key_path: \"\", ca_cert_path: \"\", insecure_skip_verify: false, timeout: 30s}"
	if got := c.CrowdSec.String(); got != want {
		t.Errorf("CrowdSec.String() = %s\nwant %s", got, want)
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", 30 * time.Second: "30s", 5 * time.Minute: "5m", 168 * time.Hour: "168h",
		90 * time.Minute: "1h30m", time.Hour + 30*time.Second: "1h0m30s", -time.Minute: "-1m",
		1500 * time.Millisecond: "1.5s",
	} {
		if got := formatDuration(d); got != want {
			t.Errorf("formatDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestPlainHTTPAPIBANURLWarns(t *testing.T) {
	for url, want := range map[string][]string{
		"https://apiban.org": nil,
		"http://apiban.example:8080/base": {"apiban.url: http://apiban.example:8080/base is plain http: " +
			"the API key crosses the network unencrypted; use https (APIBAN serves https://apiban.org)"},
		"HTTP://127.0.0.1:9": {"apiban.url: http://127.0.0.1:9 is plain http: " +
			"the API key crosses the network unencrypted; use https (APIBAN serves https://apiban.org)"},
	} {
		c, err := LoadBytes([]byte(strings.Replace(validBase, "apiban:\n", "apiban:\n  url: "+url+"\n", 1)), noEnv)
		if err != nil {
			t.Fatalf("%s: %v", url, err)
		}
		if !reflect.DeepEqual(c.Warnings, want) {
			t.Errorf("%s: warnings %q, want %q", url, c.Warnings, want)
		}
	}
}
