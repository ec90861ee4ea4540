package config

// validateBouncerOnly checks what bouncer-only mode (apiban.enabled false)
// uses: the embedded bouncer and the LAPI it pulls from. The feed and the
// machine login are not used, so their keys are not required; a file may
// keep placeholders there. docs/scale-out.md says why a PBX runs this way.
func (c *Config) validateBouncerOnly() []error {
	var errs []error
	if !c.Bouncer.Enabled {
		errs = append(errs, invalid("apiban.enabled", "false runs only the embedded bouncer, so bouncer.enabled must be true (nothing would run)"))
	}
	// The mirror runs beside the sync engine's daemon, not in this one:
	// refused rather than silently not started.
	if c.Mirror.Enabled {
		errs = append(errs, invalid("mirror.enabled", "the mirror does not run in bouncer-only mode (apiban.enabled false): run it on the bridge's host"))
	}
	// The bouncer falls back to crowdsec.lapi_url.
	if c.Bouncer.LAPIURL == "" {
		if err := checkHTTPURL("crowdsec.lapi_url", c.CrowdSec.LAPIURL); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}
