package config

import (
	"net/netip"
	"path/filepath"
)

// validateLog checks the log_* keys.
func (c *Config) validateLog() []error {
	var errs []error
	switch c.LogMode {
	case "stdout":
	case "file":
		if !filepath.IsAbs(c.LogDir) {
			errs = append(errs, invalid("log_dir", "must be an absolute directory with log_mode file, got %q", c.LogDir))
		}
	default:
		errs = append(errs, invalid("log_mode", "want stdout or file, got %q", c.LogMode))
	}
	for _, k := range []struct {
		key string
		v   int
	}{{"log_max_size", c.LogMaxSize}, {"log_max_backups", c.LogMaxBackups}, {"log_max_age", c.LogMaxAge}} {
		if k.v < 0 {
			errs = append(errs, invalid(k.key, "must be 0 or more, got %d", k.v))
		}
	}
	return errs
}

// validate checks the listener only when it is enabled, so a disabled
// section may keep placeholder values.
func (p *Prometheus) validate() []error {
	if !p.Enabled {
		return nil
	}
	var errs []error
	if _, err := netip.ParseAddr(p.ListenAddr); err != nil {
		errs = append(errs, invalid("prometheus.listen_addr", "want an IP address such as 127.0.0.1, got %q", p.ListenAddr))
	}
	// 0 asks the kernel for a free port: only useful in tests.
	if p.ListenPort < 0 || p.ListenPort > 65535 {
		errs = append(errs, invalid("prometheus.listen_port", "want a port between 0 and 65535, got %d", p.ListenPort))
	}
	return errs
}
