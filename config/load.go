package config

import (
	"errors"
	"io/fs"
	"os"
	"reflect"
	"slices"
)

// LocalSuffix names the optional overlay beside the main file
// (crowdsec-apiban-bridge.yaml.local), the crowdsec packaging convention
// for local changes that survive package upgrades.
const LocalSuffix = ".local"

// Load reads the configuration at path, merges path+".local" over it when
// that file exists, expands ${VAR} from the environment, applies the
// environment overrides and the credentials file, and validates the result.
func Load(path string) (*Config, error) {
	return LoadWith(path, os.Getenv)
}

// LoadWith is Load with the environment lookup injected (nil means
// os.Getenv), so tests do not depend on the real environment.
func LoadWith(path string, getenv func(string) string) (*Config, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	base, warnings, err := readLayer(path, getenv)
	if err != nil {
		return nil, err
	}
	layers := []layer{base}
	over, overWarnings, err := readLayer(path+LocalSuffix, getenv)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// The overlay is optional.
	case err != nil:
		return nil, err
	default:
		layers = append(layers, over)
		warnings = append(warnings, overWarnings...)
	}
	return build(layers, getenv, warnings)
}

// LoadBytes loads a configuration held in memory: no overlay and no file
// permission checks, otherwise as LoadWith (a credentials_file it names is
// still read from disk).
func LoadBytes(data []byte, getenv func(string) string) (*Config, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	l, err := parseLayer("<bytes>", expand(data, getenv))
	if err != nil {
		return nil, err
	}
	return build([]layer{l}, getenv, nil)
}

// build checks the layers, loads them through viper (the defaults, the
// main file, the overlay merged over it) and turns the result into a
// validated Config.
func build(layers []layer, getenv func(string) string, warnings []string) (*Config, error) {
	// Shape errors (unknown keys, wrong types) come first and alone:
	// validating a half-decoded config would only add noise. Each file
	// is checked on its own and as written, before viper sees it: viper
	// lowercases keys, and its merge would drop an overlay value whose
	// type differs from the main file's. A message both files earn is
	// given once.
	var errs []error
	seen := map[string]bool{}
	for _, l := range layers {
		for _, err := range checkShape("", l.raw, reflect.TypeFor[Config]()) {
			if msg := err.Error(); !seen[msg] {
				seen[msg] = true
				errs = append(errs, err)
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	v, err := newViper(layers)
	if err != nil {
		return nil, err
	}
	c, err := decode(v)
	if err != nil {
		return nil, err
	}

	credWarnings, err := c.applyCredentials(v.InConfig(keyLAPIURL))
	if err != nil {
		errs = append(errs, err)
	}
	c.applyEnv(getenv)
	valErrs, valWarnings := c.validate()
	errs = append(errs, valErrs...)
	errs = append(errs, c.validateSets(v.InConfig("apiban.set"))...)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	c.Warnings = slices.Concat(warnings, credWarnings, valWarnings)
	return c, nil
}
