//go:build tools

// Package lapibuild pins the CrowdSec commands the test harness builds.
package lapibuild

import (
	_ "github.com/crowdsecurity/crowdsec/cmd/crowdsec"
	_ "github.com/crowdsecurity/crowdsec/cmd/crowdsec-cli"
)
