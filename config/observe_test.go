package config

import (
	"path/filepath"
	"testing"
)

// The log_* and prometheus keys: exact errors, and that a disabled
// listener is not validated.
func TestObserveKeys(t *testing.T) {
	cases := []struct{ name, overlay, want string }{
		{"log mode", "log_mode: syslog\n", `config: log_mode: want stdout or file, got "syslog"`},
		{"relative log dir", "log_mode: file\nlog_dir: logs\n", `config: log_dir: must be an absolute directory with log_mode file, got "logs"`},
		{"negative size", "log_max_size: -1\n", `config: log_max_size: must be 0 or more, got -1`},
		{"negative backups", "log_max_backups: -2\n", `config: log_max_backups: must be 0 or more, got -2`},
		{"listen addr", "prometheus:\n  listen_addr: localhost\n", `config: prometheus.listen_addr: want an IP address such as 127.0.0.1, got "localhost"`},
		{"listen port", "prometheus:\n  listen_port: 70000\n", `config: prometheus.listen_port: want a port between 0 and 65535, got 70000`},
		{"port type", "prometheus:\n  listen_port: http\n", `config: prometheus.listen_port: want an integer, got "http"`},
		{"unknown key", "prometheus:\n  port: 1\n", `config: unknown key "prometheus.port"`},
		{"disabled is not checked", "prometheus:\n  enabled: false\n  listen_addr: x\n", ""},
		{"file mode ok", "log_mode: file\nlog_dir: /var/log/\n", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			path := writeFile(t, filepath.Join(dir, "c.yaml"), validBase, 0o600)
			writeFile(t, path+LocalSuffix, c.overlay, 0o600)
			_, err := LoadWith(path, noEnv)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != c.want {
				t.Fatalf("got  %q\nwant %q", got, c.want)
			}
		})
	}
}

func TestObserveDefaults(t *testing.T) {
	d := Default()
	if !d.Prometheus.Enabled || d.Prometheus.ListenAddr != "127.0.0.1" || d.Prometheus.ListenPort != 60603 {
		t.Errorf("prometheus defaults: %+v", d.Prometheus)
	}
	if d.LogMode != "stdout" || d.LogDir != "/var/log/crowdsec-apiban-bridge/" || d.LogMaxSize != 100 || d.LogMaxBackups != 3 || d.LogMaxAge != 30 || !d.LogCompress {
		t.Errorf("log defaults: %+v", d)
	}
}
