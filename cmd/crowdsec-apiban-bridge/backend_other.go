//go:build !linux

package main

import (
	"errors"

	"github.com/sirupsen/logrus"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bouncer"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/config"
)

// On FreeBSD and other systems the bridge runs without the embedded
// bouncer (nftables and ipset are Linux's): a pfSense/OPNsense host or a
// PBX beside its own CrowdSec and firewall bouncer (docs/scale-out.md).

var errUnsupported = errors.New("the embedded bouncer is not supported on this system")

// checkPlatform refuses, at -t and at start alike, a configuration that
// needs the embedded bouncer.
func checkPlatform(cfg *config.Config) error {
	if cfg.Bouncer.Enabled {
		return errors.New("config: bouncer.enabled: " + errUnsupported.Error())
	}
	return nil
}

func newBackendLogged(config.Bouncer, logrus.FieldLogger) (bouncer.Backend, error) {
	return nil, errUnsupported
}
