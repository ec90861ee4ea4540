package apiban

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"unicode"
)

// The rules below are what the client can work with. The configuration
// checks an operator's values with them, once, and names the key in its
// errors; New does not check them again: it trusts its Config. None of
// them quotes the key, and CheckBaseURL never shows a URL's userinfo.

// Versions are the API versions the client speaks: v1 puts the key in the
// URL path, v2 in a Bearer header.
var Versions = []string{"v1", "v2"}

// Sets are the v2 datasets; v1 serves only sip.
var Sets = []string{"sip", "http", "all"}

// CheckKey refuses a key that cannot travel intact in a URL path segment
// (v1) or a header (v2).
func CheckKey(k string) error {
	if k == "" {
		return errors.New("required")
	}
	for _, r := range k {
		if r > unicode.MaxASCII || !unicode.IsPrint(r) || unicode.IsSpace(r) || r == '/' {
			return errors.New("must be printable ASCII without spaces or '/'")
		}
	}
	return nil
}

// CheckBaseURL requires scheme://host[:port][/path]: the client appends
// /api/... to it, so a query, a fragment or userinfo has no place.
func CheckBaseURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("want an absolute http(s) URL")
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
		return errors.New("want scheme://host[:port][/path] only, without userinfo, query or fragment")
	}
	return nil
}

// CheckVersion requires one of Versions.
func CheckVersion(v string) error {
	if !slices.Contains(Versions, v) {
		return fmt.Errorf("want %s, got %q", orList(Versions), v)
	}
	return nil
}

// CheckSet requires one of Sets, and sip with API version v1.
func CheckSet(version, set string) error {
	switch {
	case !slices.Contains(Sets, set):
		return fmt.Errorf("want %s, got %q", orList(Sets), set)
	case version == "v1" && set != "sip":
		return fmt.Errorf("must be sip with API version v1, got %q", set)
	}
	return nil
}

// CheckMaxPages requires room for at least one full page per pass (see
// Config.MaxPages).
func CheckMaxPages(n int) error {
	if n < 1 {
		return fmt.Errorf("must be 1 or more, got %d", n)
	}
	return nil
}

// orList spells a list as "a, b or c".
func orList(items []string) string {
	if len(items) < 2 {
		return strings.Join(items, "")
	}
	return strings.Join(items[:len(items)-1], ", ") + " or " + items[len(items)-1]
}
