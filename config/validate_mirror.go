package config

import (
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"time"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/source/apiban"
)

// Mirror limits.
const (
	// MinMirrorKeyLength: a client key is a password on the network.
	MinMirrorKeyLength = 16
	// MinMirrorRateWindow keeps the limit meaningful.
	MinMirrorRateWindow = time.Second
)

var keyName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// validate checks the mirror only when it is enabled, so a disabled
// section may keep placeholder values. It names unnamed keys key-N.
func (m *Mirror) validate() []error {
	for i := range m.Keys {
		if m.Keys[i].Name == "" {
			m.Keys[i].Name = "key-" + strconv.Itoa(i+1)
		}
	}
	if !m.Enabled {
		return nil
	}
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	add(checkListen("mirror.listen_addr", m.ListenAddr))
	errs = append(errs, m.validateKeys()...)
	if m.LAPIKey == "" {
		add(invalid("mirror.lapi_key", "required when mirror.enabled is true (cscli bouncers add crowdsec-apiban-bridge-mirror gives one)"))
	} else {
		add(checkKeyText("mirror.lapi_key", m.LAPIKey, noWhitespace))
	}
	errs = append(errs, checkOrigins("mirror.origins", m.Origins)...)
	if m.UpdateFrequency < MinUpdateFrequency {
		add(invalid("mirror.update_frequency", "must be at least %s, got %s", formatDuration(MinUpdateFrequency), formatDuration(m.UpdateFrequency)))
	}
	add(checkResync("mirror.resync_interval", m.ResyncInterval))
	if m.MaxRequests < 0 {
		add(invalid("mirror.max_requests", "must be 0 (no limit) or more, got %d", m.MaxRequests))
	}
	if m.RateWindow < MinMirrorRateWindow {
		add(invalid("mirror.rate_window", "must be at least %s, got %s", formatDuration(MinMirrorRateWindow), formatDuration(m.RateWindow)))
	}
	errs = append(errs, checkCertPair("mirror.tls_cert_path", m.TLSCertPath, "mirror.tls_key_path", m.TLSKeyPath)...)
	return errs
}

// checkListen requires IP:port.
func checkListen(key, addr string) error {
	host, port, err := net.SplitHostPort(addr)
	n, perr := strconv.Atoi(port)
	if _, aerr := netip.ParseAddr(host); err != nil || aerr != nil || perr != nil || n < 0 || n > 65535 {
		return invalid(key, "want IP:port such as 127.0.0.1:60604, got %q", addr)
	}
	return nil
}

// validateKeys never quotes a key: each is a secret.
func (m *Mirror) validateKeys() []error {
	if len(m.Keys) == 0 {
		return []error{invalid("mirror.keys", "at least one key is required when mirror.enabled is true")}
	}
	var errs []error
	names, keys := map[string]int{}, map[string]int{}
	for i, k := range m.Keys {
		at := fmt.Sprintf("mirror.keys[%d]", i)
		if !keyName.MatchString(k.Name) {
			errs = append(errs, invalid(at+".name", "want letters, digits, '.', '-' and '_' (at most 64), got %q", k.Name))
		} else if j, dup := names[k.Name]; dup {
			errs = append(errs, invalid(at+".name", "%q is also mirror.keys[%d].name", k.Name, j))
		}
		names[k.Name] = i
		switch err := checkKeyText(at+".key", k.Key, apiban.CheckKey); {
		case err != nil:
			errs = append(errs, err)
		case len(k.Key) < MinMirrorKeyLength:
			errs = append(errs, invalid(at+".key", "must be at least %d characters (openssl rand -hex 16 gives one)", MinMirrorKeyLength))
		default:
			if j, dup := keys[k.Key]; dup {
				errs = append(errs, invalid(at+".key", "is also mirror.keys[%d].key", j))
			}
			keys[k.Key] = i
		}
	}
	return errs
}
