package config

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// bouncerOn is an enabled bouncer section; cases append their own keys.
const bouncerOn = "bouncer:\n  enabled: true\n  api_key: TOPSECRET-bouncer-key\n"

func loadBouncer(t *testing.T, overlay string) (c *Config, dir string, err error) {
	t.Helper()
	dir = t.TempDir()
	writeFile(t, filepath.Join(dir, "exists.pem"), "pem", 0o600)
	path := writeFile(t, filepath.Join(dir, "c.yaml"), validBase, 0o600)
	writeFile(t, path+LocalSuffix, strings.ReplaceAll(overlay, "{dir}", dir), 0o600)
	c, err = LoadWith(path, noEnv)
	return c, dir, err
}

func TestBouncerBadValues(t *testing.T) {
	cases := []struct{ name, keys, want string }{
		{"no key", "  api_key: \"\"\n",
			`config: bouncer.api_key: required when bouncer.enabled is true, unless bouncer.cert_path and bouncer.key_path are set (cscli bouncers add NAME gives one)`},
		{"key with space", "  api_key: TOPSECRET with space\n", `config: bouncer.api_key: must not contain whitespace`},
		{"key unexpanded", "  api_key: ${BOUNCER-KEY}TOPSECRET\n", `config: bouncer.api_key: holds an unexpanded ${...} reference`},
		{"cert without key", "  cert_path: {dir}/exists.pem\n", `config: bouncer.key_path: required when bouncer.cert_path is set`},
		// Every error, as in the other sections, not the first.
		{"no key, cert without key", "  api_key: \"\"\n  cert_path: {dir}/missing.pem\n",
			"config: bouncer.api_key: required when bouncer.enabled is true, unless bouncer.cert_path and bouncer.key_path are set (cscli bouncers add NAME gives one)\n" +
				"config: bouncer.key_path: required when bouncer.cert_path is set\n" +
				"config: bouncer.cert_path: stat {dir}/missing.pem: no such file or directory"},
		{"ca missing", "  ca_cert_path: {dir}/missing.pem\n", `config: bouncer.ca_cert_path: stat {dir}/missing.pem: no such file or directory`},
		{"lapi url", "  lapi_url: localhost:8080\n", `config: bouncer.lapi_url: want an absolute http(s) URL, got "localhost:8080"`},
		{"update frequency", "  update_frequency: 500ms\n", `config: bouncer.update_frequency: must be at least 1s, got 500ms`},
		{"update frequency zero", "  update_frequency: 0s\n", `config: bouncer.update_frequency: must be at least 1s, got 0s`},
		{"resync too often", "  resync_interval: 30s\n", `config: bouncer.resync_interval: must be 0 (never) or at least 1m, got 30s`},
		{"resync negative", "  resync_interval: -1h\n", `config: bouncer.resync_interval: must be 0 (never) or at least 1m, got -1h`},
		{"origin empty", "  origins: [apiban, \"\"]\n", `config: bouncer.origins[1]: want an origin such as apiban, crowdsec or cscli, got ""`},
		{"origin with comma", "  origins: [\"apiban,cscli\"]\n", `config: bouncer.origins[0]: want an origin such as apiban, crowdsec or cscli, got "apiban,cscli"`},
		{"mode", "  mode: iptables\n", `config: bouncer.mode: want nftables or ipset, got "iptables"`},
		{"table crowdsec", "  table: crowdsec\n", `config: bouncer.table: "crowdsec" is another program's object; the bouncer deletes and flushes its own objects: choose another name`},
		{"table crowdsec6", "  table: crowdsec6\n", `config: bouncer.table: "crowdsec6" is another program's object; the bouncer deletes and flushes its own objects: choose another name`},
		{"table with space", "  table: my table\n", `config: bouncer.table: want a name of letters, digits, - and _ (at most 64, starting with a letter), got "my table"`},
		{"set prefix of the stock bouncer", "  set_prefix: crowdsec-blacklists-x\n", `config: bouncer.set_prefix: must not start with "crowdsec-blacklists" (another program's objects), got "crowdsec-blacklists-x"`},
		{"set prefix upper case", "  set_prefix: CROWDSEC-BLACKLISTS\n", `config: bouncer.set_prefix: must not start with "crowdsec-blacklists" (another program's objects), got "CROWDSEC-BLACKLISTS"`},
		{"set prefix of the stock bouncer's IPv6 sets", "  set_prefix: crowdsec6-blacklists\n", `config: bouncer.set_prefix: must not start with "crowdsec6-blacklists" (another program's objects), got "crowdsec6-blacklists"`},
		{"chain of the stock bouncer's IPv6 table", "  chain: crowdsec6-chain\n", `config: bouncer.chain: must not start with "crowdsec6-chain" (another program's objects), got "crowdsec6-chain"`},
		{"set prefix too long for ipset", "  set_prefix: a-very-long-set-prefix-name\n", `config: bouncer.set_prefix: want a name of letters, digits, - and _ (at most 23, starting with a letter), got "a-very-long-set-prefix-name"`},
		{"set prefix one over", "  set_prefix: apiban-bridge-0123456789\n", `config: bouncer.set_prefix: want a name of letters, digits, - and _ (at most 23, starting with a letter), got "apiban-bridge-0123456789"`},
		{"chain of the stock bouncer", "  chain: crowdsec-chain\n", `config: bouncer.chain: must not start with "crowdsec-chain" (another program's objects), got "crowdsec-chain"`},
		{"iptables chain of the stock bouncer", "  iptables_chain: CROWDSEC_CHAIN\n", `config: bouncer.iptables_chain: "CROWDSEC_CHAIN" is another program's object; the bouncer deletes and flushes its own objects: choose another name`},
		// Names of the system's and other programs' objects.
		{"table filter", "  table: filter\n", `config: bouncer.table: "filter" is another program's object; the bouncer deletes and flushes its own objects: choose another name`},
		{"table nat", "  table: nat\n", `config: bouncer.table: "nat" is another program's object; the bouncer deletes and flushes its own objects: choose another name`},
		{"table Mangle", "  table: Mangle\n", `config: bouncer.table: "Mangle" is another program's object; the bouncer deletes and flushes its own objects: choose another name`},
		{"table raw", "  table: raw\n", `config: bouncer.table: "raw" is another program's object; the bouncer deletes and flushes its own objects: choose another name`},
		{"table security", "  table: security\n", `config: bouncer.table: "security" is another program's object; the bouncer deletes and flushes its own objects: choose another name`},
		{"table firewalld", "  table: firewalld\n", `config: bouncer.table: "firewalld" is another program's object; the bouncer deletes and flushes its own objects: choose another name`},
		{"iptables chain INPUT", "  iptables_chain: INPUT\n", `config: bouncer.iptables_chain: "INPUT" is another program's object; the bouncer deletes and flushes its own objects: choose another name`},
		{"iptables chain forward", "  iptables_chain: forward\n", `config: bouncer.iptables_chain: "forward" is another program's object; the bouncer deletes and flushes its own objects: choose another name`},
		{"iptables chain OUTPUT", "  iptables_chain: OUTPUT\n", `config: bouncer.iptables_chain: "OUTPUT" is another program's object; the bouncer deletes and flushes its own objects: choose another name`},
		{"iptables chain PREROUTING", "  iptables_chain: PREROUTING\n", `config: bouncer.iptables_chain: "PREROUTING" is another program's object; the bouncer deletes and flushes its own objects: choose another name`},
		{"iptables chain POSTROUTING", "  iptables_chain: POSTROUTING\n", `config: bouncer.iptables_chain: "POSTROUTING" is another program's object; the bouncer deletes and flushes its own objects: choose another name`},
		{"iptables chain DOCKER-USER", "  iptables_chain: DOCKER-USER\n", `config: bouncer.iptables_chain: "DOCKER-USER" is another program's object; the bouncer deletes and flushes its own objects: choose another name`},
		{"iptables chain of fail2ban", "  iptables_chain: f2b-sshd\n", `config: bouncer.iptables_chain: must not start with "f2b-" (another program's objects), got "f2b-sshd"`},
		{"chain INPUT", "  chain: INPUT\n", `config: bouncer.chain: "INPUT" is another program's object; the bouncer deletes and flushes its own objects: choose another name`},
		{"chain of ufw", "  chain: ufw-user\n", `config: bouncer.chain: must not start with "ufw-" (another program's objects), got "ufw-user"`},
		{"set prefix of fail2ban", "  set_prefix: f2b-sip\n", `config: bouncer.set_prefix: must not start with "f2b-" (another program's objects), got "f2b-sip"`},
		{"min prefix v4 zero", "  min_prefix_v4: 0\n", `config: bouncer.min_prefix_v4: must be between 1 and 32, got 0`},
		{"min prefix v4 too long", "  min_prefix_v4: 33\n", `config: bouncer.min_prefix_v4: must be between 1 and 32, got 33`},
		{"min prefix v6 zero", "  min_prefix_v6: 0\n", `config: bouncer.min_prefix_v6: must be between 1 and 128, got 0`},
		{"min prefix v6 too long", "  min_prefix_v6: 129\n", `config: bouncer.min_prefix_v6: must be between 1 and 128, got 129`},
		{"iptables chain too long", "  iptables_chain: APIBAN_BRIDGE_WITH_A_LONG_NAME\n", `config: bouncer.iptables_chain: want a name of letters, digits, - and _ (at most 28, starting with a letter), got "APIBAN_BRIDGE_WITH_A_LONG_NAME"`},
		{"no hooks", "  hooks: []\n", `config: bouncer.hooks: want input, forward or both, got none`},
		{"bad hook", "  hooks: [input, output]\n", `config: bouncer.hooks[1]: want input or forward, got "output"`},
		{"hook twice", "  hooks: [input, input]\n", `config: bouncer.hooks[1]: "input" given twice`},
		{"metrics interval", "  metrics_interval: 30s\n", `config: bouncer.metrics_interval: must be 0 (none) or at least 1m, got 30s`},
		{"priority", "  priority: 5000\n", `config: bouncer.priority: must be between -1000 and 1000, got 5000`},
		{"wrong type", "  keep_on_exit: sometimes\n", `config: bouncer.keep_on_exit: want true or false, got "sometimes"`},
		{"unknown key", "  tables: [x]\n", `config: unknown key "bouncer.tables"`},
		{"several", "  mode: x\n  priority: -2000\n",
			"config: bouncer.mode: want nftables or ipset, got \"x\"\nconfig: bouncer.priority: must be between -1000 and 1000, got -2000"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			head := bouncerOn
			if strings.Contains(tc.keys, "api_key:") {
				head = "bouncer:\n  enabled: true\n"
			}
			c, dir, err := loadBouncer(t, head+tc.keys)
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			if c != nil {
				t.Error("config returned with the error")
			}
			if want := strings.ReplaceAll(tc.want, "{dir}", dir); err.Error() != want {
				t.Errorf("error:\n%s\nwant:\n%s", err, want)
			}
			if strings.Contains(err.Error(), "TOPSECRET") {
				t.Errorf("error shows a secret: %s", err)
			}
		})
	}
}

func TestBouncerDefaultsAndDisabled(t *testing.T) {
	// Disabled: placeholder values are not checked.
	c, _, err := loadBouncer(t, "bouncer:\n  table: crowdsec\n  api_key: \"\"\n")
	if err != nil {
		t.Fatal(err)
	}
	b := c.Bouncer
	if b.Enabled || b.Mode != "nftables" || b.UpdateFrequency != 10*time.Second || b.ResyncInterval != time.Hour || b.Table != "crowdsec" ||
		b.SetPrefix != "apiban-bridge" || len(b.Origins) != 0 || len(b.Hooks) != 1 || b.Hooks[0] != "input" || b.KeepOnExit {
		t.Errorf("unexpected bouncer section %+v", b)
	}

	c, _, err = loadBouncer(t, bouncerOn+"  origins: [apiban]\n  hooks: [input, forward]\n  mode: ipset\n")
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Bouncer; !got.Enabled || got.APIKey != "TOPSECRET-bouncer-key" || len(got.Origins) != 1 || len(got.Hooks) != 2 {
		t.Errorf("unexpected bouncer section %+v", got.Origins)
	}
	if r := c.Redacted(); strings.Contains(r, "TOPSECRET") || !strings.Contains(r, "api_key: "+Masked) {
		t.Errorf("redacted output shows the bouncer key or no mask:\n%s", r)
	}
}

func TestBouncerKeyInReadableFileWarns(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, filepath.Join(dir, "c.yaml"),
		"apiban:\n  api_key: ${K}\ncrowdsec:\n  password: ${P}\n"+bouncerOn, 0o644)
	c, err := LoadWith(path, envOf(map[string]string{"K": "k", "P": "p"}))
	if err != nil {
		t.Fatal(err)
	}
	if w := strings.Join(c.Warnings, "\n"); !strings.Contains(w, "bouncer.api_key") {
		t.Errorf("no warning about the bouncer key in a readable file: %q", w)
	}
}
