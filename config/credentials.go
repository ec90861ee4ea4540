package config

import (
	"errors"
	"fmt"
	"slices"
)

// The secrets: their keys, the environment variables that override
// them and the credentials file that cscli writes.

// Environment variables that override the two secrets after the files are
// read, so that a packager can keep them out of the file altogether.
const (
	EnvAPIKey   = "APIBAN_API_KEY"
	EnvPassword = "CROWDSEC_APIBAN_PASSWORD"
)

// The dotted keys of the secrets: their values never appear in an error,
// a warning or Redacted output.
const (
	keyAPIKey   = "apiban.api_key"
	keyPassword = "crowdsec.password"
)

// keyLAPIURL is the key that a credentials file's url fills unless the
// configuration files set it.
const keyLAPIURL = "crowdsec.lapi_url"

// keyBouncerAPIKey is the embedded bouncer's LAPI key, a secret too.
const keyBouncerAPIKey = "bouncer.api_key"

// secretKeys lists every secret key.
var secretKeys = []string{keyAPIKey, keyPassword, keyBouncerAPIKey, keyMirrorLAPIKey, keyMirrorKey}

func isSecret(key string) bool { return slices.Contains(secretKeys, secretPath(key)) }

// applyEnv lets the environment override the secrets, after the files.
func (c *Config) applyEnv(getenv func(string) string) {
	if v := getenv(EnvAPIKey); v != "" {
		c.APIBAN.APIKey = v
	}
	if v := getenv(EnvPassword); v != "" {
		c.CrowdSec.Password = v
	}
}

// applyCredentials reads crowdsec.credentials_file, the YAML that
// `cscli machines add -f FILE` writes (url, login, password). It supplies
// login and password, and lapi_url unless the files set it. Errors name the
// file and the key, never the password.
func (c *Config) applyCredentials(lapiURLSet bool) ([]string, error) {
	path := c.CrowdSec.CredentialsFile
	if path == "" {
		return nil, nil
	}
	const key = "crowdsec.credentials_file"
	data, mode, err := readFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %s: %w", key, err)
	}
	raw, err := parseYAML(path, data)
	if err != nil {
		return nil, fmt.Errorf("config: %s: %w", key, err)
	}
	var errs []error
	get := func(name string, required bool) string {
		v := raw[name]
		s, ok := v.(string)
		switch {
		case v != nil && !ok:
			errs = append(errs, fmt.Errorf("config: %s: %s: %s: want a string, got %s", key, path, name, kindName(v)))
		case s == "" && required:
			errs = append(errs, fmt.Errorf("config: %s: %s: missing key %q", key, path, name))
		}
		return s
	}
	lapiURL, login, password := get("url", false), get("login", true), get("password", true)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	c.CrowdSec.Login, c.CrowdSec.Password = login, password
	if lapiURL != "" && !lapiURLSet {
		c.CrowdSec.LAPIURL = lapiURL
	}
	var warnings []string
	if exposed(mode) {
		warnings = append(warnings, permWarning(path, "a password", mode))
	}
	return warnings, nil
}
