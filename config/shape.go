package config

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The shape check: the parsed tree against the Config type, before
// viper sees it.

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
