package config

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"reflect"
	"strings"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"
)

// layer is one configuration file: the main file or its .local overlay.
type layer struct {
	name string         // the file's path, or "<bytes>"
	text []byte         // the text after ${VAR} expansion: what viper reads
	raw  map[string]any // text parsed by parseYAML, for checkShape
}

// newViper loads the layers into a fresh viper instance: every key's
// default from Default(), the first layer read, each further layer merged
// over it. The layers must have passed checkShape. Nothing is read from
// the environment here: applyEnv handles the two variables that override.
func newViper(layers []layer) (*viper.Viper, error) {
	v := viper.NewWithOptions(
		viper.WithDecoderRegistry(textDecoders{}),
		viper.WithLogger(slog.New(slog.DiscardHandler)),
	)
	v.SetConfigType("yaml")
	setDefaults(v, "", reflect.ValueOf(Default()).Elem())
	for i, l := range layers {
		read := v.MergeConfig
		if i == 0 {
			read = v.ReadConfig
		}
		if err := read(bytes.NewReader(l.text)); err != nil {
			// Not expected: parseLayer has parsed the same text.
			return nil, fmt.Errorf("config: %s: %w", l.name, err)
		}
	}
	return v, nil
}

// setDefaults gives viper the default of every key, from the fields of
// Default() (val), leaving out the derived fields.
func setDefaults(v *viper.Viper, prefix string, val reflect.Value) {
	for f := range val.Type().Fields() {
		name, ok := fieldKey(f)
		if !ok {
			continue
		}
		key, fv := joinKey(prefix, name), val.FieldByIndex(f.Index)
		if f.Type.Kind() == reflect.Struct {
			setDefaults(v, key, fv)
			continue
		}
		v.SetDefault(key, fv.Interface())
	}
}

// decode unmarshals viper's settings (the files over the defaults) into a
// new Config. Scalars from the files arrive as text, so weak typing
// converts them; checkShape has already vetted every value, and the
// unused-key check is only a backstop for it.
func decode(v *viper.Viper) (*Config, error) {
	c := &Config{}
	err := v.Unmarshal(c, viper.DecoderConfigOption(func(dc *mapstructure.DecoderConfig) {
		dc.ErrorUnused = true
		dc.WeaklyTypedInput = true
		// Replaces viper's hooks, one of which would split a string
		// on commas into a list.
		dc.DecodeHook = mapstructure.ComposeDecodeHookFunc(
			secretHook,
			mapstructure.StringToTimeDurationHookFunc(),
		)
		// Keys are matched exactly, as checkShape matches them.
		dc.MatchName = func(mapKey, fieldName string) bool { return mapKey == fieldName }
	}))
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return c, nil
}

// textDecoders gives viper textYAML for "yaml", in place of its own YAML
// decoder.
type textDecoders struct{}

func (textDecoders) Decoder(format string) (viper.Decoder, error) {
	if format != "yaml" {
		return nil, fmt.Errorf("no decoder for %q", format)
	}
	return textYAML{}, nil
}

// textYAML is the YAML decoder viper reads the files with. Viper's own
// decoder types scalars, which mangles a secret before the struct sees it
// (a password 0123 becomes "83", 1e5 "100000", true "1"); textYAML keeps
// every scalar as the text written, as parseYAML does. It also:
//   - writes a null section ("decisions: ~") as a mapping of null keys:
//     both mean the section's defaults, but viper's merge keeps the main
//     file's section when the overlay's is not a mapping;
//   - wraps the two secrets in secretText, which never prints, since
//     viper's merge logs the values it merges.
type textYAML struct{}

func (textYAML) Decode(b []byte, m map[string]any) error {
	tree, err := parseYAML("yaml", b)
	if err != nil {
		return err
	}
	nullSections(tree, reflect.TypeFor[Config]())
	for _, key := range secretKeys {
		path := strings.Split(key, ".")
		section, _ := lookup(tree, path[:len(path)-1]...).(map[string]any)
		last := path[len(path)-1]
		if s, ok := section[last].(string); ok {
			section[last] = secretText{s}
		}
	}
	wrapMirrorKeys(tree)
	maps.Copy(m, tree)
	return nil
}

// nullSections replaces each section given as null with a mapping that
// sets each of the section's keys to null.
func nullSections(tree map[string]any, t reflect.Type) {
	for key, f := range fieldsByKey(t) {
		if f.Type.Kind() != reflect.Struct {
			continue
		}
		v, present := tree[key]
		switch sub := v.(type) {
		case map[string]any:
			nullSections(sub, f.Type)
		case nil:
			if present {
				tree[key] = nullSection(f.Type)
			}
		}
	}
}

func nullSection(t reflect.Type) map[string]any {
	fields := fieldsByKey(t)
	m := make(map[string]any, len(fields))
	for key, f := range fields {
		if f.Type.Kind() == reflect.Struct {
			m[key] = nullSection(f.Type)
		} else {
			m[key] = nil
		}
	}
	return m
}

// secretText carries a secret's value through viper. Viper's merge logs
// the values it merges (every one at debug level; at error level, both
// sides of a mapping it cannot merge) through the package-level viper
// logger, whichever logger a program sets there, not the instance's. A
// secretText shows as Masked however it is printed or encoded; secretHook
// unwraps it into the struct.
type secretText struct{ text string }

// Format covers every fmt verb, %#v included.
func (secretText) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, Masked) }

// MarshalText covers slog's handlers and the JSON and YAML encoders.
func (secretText) MarshalText() ([]byte, error) { return []byte(Masked), nil }

var secretTextType = reflect.TypeFor[secretText]()

func secretHook(from, to reflect.Type, data any) (any, error) {
	if from == secretTextType && to.Kind() == reflect.String {
		return data.(secretText).text, nil
	}
	return data, nil
}
