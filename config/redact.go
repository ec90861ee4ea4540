package config

import (
	"bytes"
	"reflect"
	"time"

	"go.yaml.in/yaml/v3"
)

// Masked stands in for a secret that is set; an unset secret shows as "".
const Masked = "<redacted>"

// Redacted renders the configuration as YAML in the file's layout, with
// the secrets masked, for `-t -v` and debug logs. Derived fields (Level,
// Prefixes, Warnings) are left out: they are not keys of the file.
func (c Config) Redacted() string {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	// Encoding a tree of plain strings, ints and bools cannot fail.
	_ = enc.Encode(render(reflect.ValueOf(c), ""))
	_ = enc.Close()
	return buf.String()
}

// String is Redacted, so that printing a Config with %v never leaks.
func (c Config) String() string { return c.Redacted() }

// String masks the API key, so that printing the section with %v never
// leaks it.
func (a APIBAN) String() string { return flow(a, "apiban") }

// String masks the password, so that printing the section with %v never
// leaks it.
func (cs CrowdSec) String() string { return flow(cs, "crowdsec") }

// flow renders one section on one line: {key: value, ...}.
func flow(section any, key string) string {
	n := render(reflect.ValueOf(section), key)
	n.Style = yaml.FlowStyle
	out, err := yaml.Marshal(n)
	if err != nil {
		return "{}"
	}
	return string(bytes.TrimSpace(out))
}

// render builds the YAML node of a config value; key is its dotted key,
// which decides whether the value is a secret.
func render(v reflect.Value, key string) *yaml.Node {
	if v.Type() == durationType {
		return scalar(formatDuration(time.Duration(v.Int())))
	}
	if v.Kind() == reflect.Struct {
		n := &yaml.Node{Kind: yaml.MappingNode}
		for f := range v.Type().Fields() {
			name, ok := fieldKey(f)
			if !ok {
				continue
			}
			n.Content = append(n.Content, scalar(name), render(v.FieldByIndex(f.Index), joinKey(key, name)))
		}
		return n
	}
	if v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Struct {
		// mirror.keys: each item's fields by their keys, so that a
		// secret field is masked.
		n := &yaml.Node{Kind: yaml.SequenceNode}
		for i := range v.Len() {
			n.Content = append(n.Content, render(v.Index(i), key))
		}
		return n
	}
	if isSecret(key) && v.String() != "" {
		return scalar(Masked)
	}
	n := &yaml.Node{}
	if err := n.Encode(v.Interface()); err != nil {
		return scalar("?")
	}
	return n
}

func scalar(s string) *yaml.Node {
	n := &yaml.Node{}
	_ = n.Encode(s) // a string always encodes
	return n
}
