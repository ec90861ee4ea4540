package config

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
)

// Reading a configuration or credentials file: bounded, and with the
// warning when others can read a secret in it.

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
