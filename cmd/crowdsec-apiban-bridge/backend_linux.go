package main

import (
	"fmt"
	"strings"

	"github.com/sirupsen/logrus"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bouncer"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bouncer/ipset"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bouncer/nftables"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/config"
)

// The kernel backends are Linux's; backend_other.go stands in elsewhere.

// checkPlatform: every configuration can run here.
func checkPlatform(*config.Config) error { return nil }

func newBackendLogged(bc config.Bouncer, log logrus.FieldLogger) (bouncer.Backend, error) {
	switch bc.Mode {
	case "nftables":
		opts := nftables.Options{
			Table:     bc.Table,
			SetPrefix: bc.SetPrefix,
			Priority:  bc.Priority,
		}
		for _, h := range bc.Hooks {
			switch h {
			case "input":
				opts.InputChain = bc.Chain + "-input"
			case "forward":
				opts.ForwardChain = bc.Chain + "-forward"
			}
		}
		return nftables.New(opts)
	case "ipset":
		var hooks []string
		for _, h := range bc.Hooks {
			hooks = append(hooks, strings.ToUpper(h)) // input -> INPUT
		}
		return ipset.New(ipset.Options{
			SetPrefix: bc.SetPrefix,
			Chain:     bc.IptablesChain,
			Hooks:     hooks,
			Log:       log,
		})
	default:
		return nil, fmt.Errorf("bouncer.mode %q is not available", bc.Mode)
	}
}
