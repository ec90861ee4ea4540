package config

import (
	"fmt"
	"regexp"

	"go.yaml.in/yaml/v3"
)

// The YAML pass: ${VAR} expansion on the text, then a parse of our own
// that keeps every scalar as written and names the file, the line and the
// dotted key of what is wrong.

// refPattern matches a ${NAME} reference. Only the braced form is expanded:
// a bare $ is left alone, so a password such as "pa$word" survives.
var refPattern = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// expand replaces each ${NAME} with getenv(NAME); unset gives "", as
// os.ExpandEnv does in crowdsec. It works on the text, before parsing, like
// crowdsec and its bouncers, so a value holding YAML syntax (": ", " #")
// must be quoted in the file.
func expand(data []byte, getenv func(string) string) []byte {
	return refPattern.ReplaceAllFunc(data, func(ref []byte) []byte {
		return []byte(getenv(string(ref[2 : len(ref)-1])))
	})
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
