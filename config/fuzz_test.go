package config

import (
	"strings"
	"testing"
)

// FuzzLoadConfig: any file content loads or fails with an error, never a
// panic; and secrets given through the environment never show in an
// error, a warning or the redacted configuration.
func FuzzLoadConfig(f *testing.F) {
	f.Add(string(Template))
	f.Add(validBase)
	f.Add("")
	f.Add("apiban: [\n")
	f.Add("apiban:\n  api_key: \"\"\n  set: ssh\ndecisions:\n  batch_size: 0\nlog_level: loud\n")
	f.Add("apiban:\n  url: ftp://u:pw@apiban.org\n  poll_interval: 5s\ncrowdsec:\n  password: {a: b}\n")
	f.Add("decisions:\n  min_prefix_v4: 33\n  min_prefix_v6: -1\n  max_new_per_sync: x\n")
	f.Add("base: &b {url: x}\napiban:\n  <<: *b\n")
	f.Add("allowlist:\n  cidrs: [10.0.0.0/8, \"fe80::1%eth0\", ~, {a: b}]\n")
	f.Add("crowdsec:\n  credentials_file: /dev/zero\n")
	f.Add("crowdsec:\n  credentials_file: /etc\n  cert_path: /nonexistent\n")
	env := envOf(map[string]string{EnvAPIKey: secretKey, EnvPassword: secretPassword})
	f.Fuzz(func(t *testing.T, data string) {
		c, err := LoadBytes([]byte(data), env)
		if strings.Contains(data, "${") || strings.Contains(data, "TOPSECRET") {
			// The file itself then names or holds the secret: only
			// the absence of a panic is checked.
			return
		}
		if err != nil {
			if leaks(err.Error()) {
				t.Fatalf("an error shows a secret: %v", err)
			}
			return
		}
		if leaks(c.Redacted()) || leaks(strings.Join(c.Warnings, "\n")) {
			t.Fatalf("the redacted config or a warning shows a secret")
		}
		if c.APIBAN.APIKey != secretKey || c.CrowdSec.Password != secretPassword {
			t.Fatalf("the environment did not override the secrets")
		}
	})
}

func leaks(s string) bool {
	return strings.Contains(s, secretKey) || strings.Contains(s, secretPassword)
}
