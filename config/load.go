package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Environment variables that override the two secrets after the files are
// read, so that a packager can keep them out of the file altogether.
const (
	EnvAPIKey   = "APIBAN_API_KEY"
	EnvPassword = "CROWDSEC_APIBAN_PASSWORD"
)

// LocalSuffix names the optional overlay beside the main file
// (crowdsec-apiban-bridge.yaml.local), the crowdsec packaging convention
// for local changes that survive package upgrades.
const LocalSuffix = ".local"

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
var secretKeys = []string{keyAPIKey, keyPassword, keyBouncerAPIKey}

func isSecret(key string) bool { return slices.Contains(secretKeys, key) }

// refPattern matches a ${NAME} reference. Only the braced form is expanded:
// a bare $ is left alone, so a password such as "pa$word" survives.
var refPattern = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

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
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	c.Warnings = slices.Concat(warnings, credWarnings, valWarnings)
	return c, nil
}

// readLayer reads, expands and parses one configuration file, and warns
// when the file holds a secret others can read.
func readLayer(path string, getenv func(string) string) (layer, []string, error) {
	data, mode, err := readFile(path)
	if err != nil {
		return layer{}, nil, fmt.Errorf("config: %w", err)
	}
	l, err := parseLayer(path, expand(data, getenv))
	if err != nil {
		return layer{}, nil, err
	}
	var warnings []string
	// The second parse that literalSecrets needs is only worth it when
	// others can read the file.
	if !exposed(mode) {
		return l, nil, nil
	}
	if keys := literalSecrets(data, l.raw); len(keys) > 0 {
		warnings = append(warnings, permWarning(path, strings.Join(keys, " and "), mode))
	}
	return l, warnings, nil
}

// parseLayer parses the expanded text of one file. This parse, not
// viper's, reports syntax errors (naming the file) and duplicate keys, and
// gives the exact-case tree that checkShape walks.
func parseLayer(name string, text []byte) (layer, error) {
	raw, err := parseYAML(name, text)
	if err != nil {
		return layer{}, fmt.Errorf("config: %w", err)
	}
	return layer{name: name, text: text, raw: raw}, nil
}

// maxFileBytes bounds a configuration or credentials file.
const maxFileBytes = 1 << 20

// readFile returns a file's content and its mode, taken from the same open
// file so that the mode checked is the mode of what was read.
func readFile(path string) ([]byte, fs.FileMode, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, 0, err
	}
	if info.IsDir() {
		return nil, 0, fmt.Errorf("%s: is a directory", path)
	}
	// Capped: a path such as /dev/zero (or a huge file named by mistake)
	// must fail, not exhaust memory.
	data, err := io.ReadAll(io.LimitReader(f, maxFileBytes+1))
	if err != nil {
		return nil, 0, err
	}
	if len(data) > maxFileBytes {
		return nil, 0, fmt.Errorf("%s: larger than %d bytes", path, maxFileBytes)
	}
	return data, info.Mode(), nil
}

// exposed reports whether group or others may read a file.
func exposed(mode fs.FileMode) bool {
	return mode.Perm()&0o044 != 0
}

func permWarning(path, what string, mode fs.FileMode) string {
	return fmt.Sprintf("%s holds %s but is readable by group or others (mode %04o); run chmod 600 %s",
		path, what, mode.Perm(), path)
}

// literalSecrets lists the secret keys that the file text sets to a literal
// value: a secret that is only a ${VAR} reference lives in the environment,
// not in the file, and needs no warning.
func literalSecrets(text []byte, expanded map[string]any) []string {
	unexpanded, err := parseYAML("", text)
	if err != nil {
		// The text only parses once expanded: judge by the expanded
		// value, which errs on the side of warning.
		unexpanded = expanded
	}
	var keys []string
	for _, key := range secretKeys {
		s, _ := lookup(unexpanded, strings.Split(key, ".")...).(string)
		if strings.TrimSpace(refPattern.ReplaceAllString(s, "")) != "" {
			keys = append(keys, key)
		}
	}
	return keys
}

// expand replaces each ${NAME} with getenv(NAME); unset gives "", as
// os.ExpandEnv does in crowdsec. It works on the text, before parsing, like
// crowdsec and its bouncers, so a value holding YAML syntax (": ", " #")
// must be quoted in the file.
func expand(data []byte, getenv func(string) string) []byte {
	return refPattern.ReplaceAllFunc(data, func(ref []byte) []byte {
		return []byte(getenv(string(ref[2 : len(ref)-1])))
	})
}

// parseYAML parses a YAML document into a tree of map[string]any, []any,
// string and nil. Every scalar stays the exact text written: the decoder
// converts it to the field's type later, so a secret such as 0123 or 1e5
// is not mangled into a number first, and a bare number given for a
// duration is an error instead of nanoseconds.
func parseYAML(name string, data []byte) (map[string]any, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(doc.Content) == 0 {
		return map[string]any{}, nil // empty file: all defaults
	}
	budget := maxNodes
	tree, err := fromNode(doc.Content[0], "", &budget)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	switch t := tree.(type) {
	case nil:
		return map[string]any{}, nil
	case map[string]any:
		return t, nil
	default:
		return nil, fmt.Errorf("%s: want a mapping of keys at the top level, got %s", name, kindName(tree))
	}
}

// maxNodes bounds the values a file may expand to: YAML aliases can make a
// few lines stand for billions of nodes ("billion laughs").
const maxNodes = 100_000

func fromNode(n *yaml.Node, key string, budget *int) (any, error) {
	if *budget--; *budget < 0 {
		return nil, fmt.Errorf("line %d: more than %d values (alias expansion?)", n.Line, maxNodes)
	}
	switch n.Kind {
	case yaml.AliasNode:
		return fromNode(n.Alias, key, budget)
	case yaml.ScalarNode:
		if n.ShortTag() == "!!null" {
			return nil, nil
		}
		return n.Value, nil
	case yaml.SequenceNode:
		list := make([]any, 0, len(n.Content))
		for i, item := range n.Content {
			v, err := fromNode(item, fmt.Sprintf("%s[%d]", key, i), budget)
			if err != nil {
				return nil, err
			}
			list = append(list, v)
		}
		return list, nil
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("line %d: a key under %q is not a plain name", k.Line, key)
			}
			sub := joinKey(key, k.Value)
			if _, dup := m[k.Value]; dup {
				return nil, fmt.Errorf("line %d: duplicate key %q", k.Line, sub)
			}
			val, err := fromNode(v, sub, budget)
			if err != nil {
				return nil, err
			}
			m[k.Value] = val
		}
		return m, nil
	default:
		return nil, fmt.Errorf("line %d: unexpected YAML node", n.Line)
	}
}

func lookup(tree any, path ...string) any {
	for _, p := range path {
		m, ok := tree.(map[string]any)
		if !ok {
			return nil
		}
		tree = m[p]
	}
	return tree
}

func joinKey(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

var durationType = reflect.TypeFor[time.Duration]()

// checkShape compares the raw tree with the Config type: unknown keys and
// values that cannot become the field's type, each error naming the dotted
// key. It accepts exactly what decode can convert, so that decode never
// has to report (mapstructure's messages name keys less clearly).
func checkShape(key string, v any, t reflect.Type) []error {
	if v == nil {
		return nil // null keeps the default
	}
	switch {
	case t == durationType:
		if s, ok := v.(string); ok {
			if _, err := time.ParseDuration(s); err == nil {
				return nil
			}
		}
		return []error{typeError(key, "a duration such as 30s, 5m or 168h", v)}
	case t.Kind() == reflect.Struct:
		return checkStruct(key, v, t)
	case t.Kind() == reflect.Slice:
		list, ok := v.([]any)
		if !ok {
			return []error{typeError(key, "a list", v)}
		}
		var errs []error
		for i, item := range list {
			errs = append(errs, checkShape(fmt.Sprintf("%s[%d]", key, i), item, t.Elem())...)
		}
		return errs
	}
	s, ok := v.(string)
	switch t.Kind() {
	case reflect.String:
		if !ok {
			return []error{typeError(key, "a string", v)}
		}
	case reflect.Int:
		if _, err := strconv.ParseInt(s, 0, t.Bits()); !ok || err != nil {
			return []error{typeError(key, "an integer", v)}
		}
	case reflect.Bool:
		if _, err := strconv.ParseBool(s); !ok || err != nil {
			return []error{typeError(key, "true or false", v)}
		}
	default:
		return []error{fmt.Errorf("config: %s: field type %s is not supported by the loader", key, t)}
	}
	return nil
}

func checkStruct(key string, v any, t reflect.Type) []error {
	m, ok := v.(map[string]any)
	if !ok {
		// A section's value is never shown: it may be a secret written
		// one level too high.
		return []error{fmt.Errorf("config: %s: want a mapping, got %s", key, kindName(v))}
	}
	fields := fieldsByKey(t)
	var errs []error
	for _, k := range slices.Sorted(maps.Keys(m)) {
		sub := joinKey(key, k)
		f, known := fields[k]
		if !known {
			errs = append(errs, fmt.Errorf("config: unknown key %q", sub))
			continue
		}
		errs = append(errs, checkShape(sub, m[k], f.Type)...)
	}
	return errs
}

// fieldsByKey maps a struct's mapstructure keys to its fields, leaving out
// the derived fields tagged "-".
func fieldsByKey(t reflect.Type) map[string]reflect.StructField {
	fields := make(map[string]reflect.StructField, t.NumField())
	for f := range t.Fields() {
		if name, ok := fieldKey(f); ok {
			fields[name] = f
		}
	}
	return fields
}

// fieldKey is the configuration key of a struct field; false for the
// derived fields tagged "-".
func fieldKey(f reflect.StructField) (string, bool) {
	name, _, _ := strings.Cut(f.Tag.Get("mapstructure"), ",")
	return name, name != "" && name != "-"
}

func typeError(key, want string, v any) error {
	if _, isString := v.(string); isString && isSecret(key) {
		return fmt.Errorf("config: %s: want %s", key, want)
	}
	return fmt.Errorf("config: %s: want %s, got %s", key, want, kindOf(v))
}

// kindOf describes a raw value for an error: a scalar quoted, else its kind.
func kindOf(v any) string {
	if s, ok := v.(string); ok {
		return strconv.Quote(s)
	}
	return kindName(v)
}

func kindName(v any) string {
	switch v.(type) {
	case map[string]any:
		return "a mapping"
	case []any:
		return "a list"
	case string:
		return "a string"
	default:
		return "nothing"
	}
}

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
