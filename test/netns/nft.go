package netns

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"
)

// SetElem is one element of an nftables set as `nft -j` shows it.
type SetElem struct {
	Prefix  netip.Prefix
	Timeout time.Duration
	Expires time.Duration
}

// NftSet lists a set's elements with `nft -j list set`; ok is false when
// the set does not exist.
func (n *NS) NftSet(t *testing.T, family, table, set string) (elems map[netip.Prefix]SetElem, ok bool) {
	t.Helper()
	out, err := n.Try("nft", "-j", "list", "set", family, table, set)
	if err != nil {
		return nil, false
	}
	var doc struct {
		Nftables []map[string]json.RawMessage `json:"nftables"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("nft -j: %v\n%s", err, out)
	}
	elems = map[netip.Prefix]SetElem{}
	for _, obj := range doc.Nftables {
		raw, isSet := obj["set"]
		if !isSet {
			continue
		}
		var s struct {
			Elem []json.RawMessage `json:"elem"`
		}
		if err := json.Unmarshal(raw, &s); err != nil {
			t.Fatal(err)
		}
		for _, e := range s.Elem {
			el := parseElem(t, e)
			elems[el.Prefix] = el
		}
	}
	return elems, true
}

// parseElem reads "1.2.3.4", {"prefix":{...}}, {"range":[a,b]} or
// {"elem":{"val":..., "timeout":N, "expires":N}}.
func parseElem(t *testing.T, raw json.RawMessage) SetElem {
	t.Helper()
	var wrapped struct {
		Elem *struct {
			Val     json.RawMessage `json:"val"`
			Timeout int64           `json:"timeout"`
			Expires int64           `json:"expires"`
		} `json:"elem"`
	}
	if json.Unmarshal(raw, &wrapped) == nil && wrapped.Elem != nil {
		el := parseElem(t, wrapped.Elem.Val)
		el.Timeout = time.Duration(wrapped.Elem.Timeout) * time.Second
		el.Expires = time.Duration(wrapped.Elem.Expires) * time.Second
		return el
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		a, err := netip.ParseAddr(s)
		if err != nil {
			t.Fatal(err)
		}
		return SetElem{Prefix: netip.PrefixFrom(a, a.BitLen())}
	}
	var pfx struct {
		Prefix *struct {
			Addr string `json:"addr"`
			Len  int    `json:"len"`
		} `json:"prefix"`
		Range []string `json:"range"`
	}
	if err := json.Unmarshal(raw, &pfx); err != nil {
		t.Fatal(err)
	}
	if pfx.Prefix != nil {
		return SetElem{Prefix: netip.MustParsePrefix(fmt.Sprintf("%s/%d", pfx.Prefix.Addr, pfx.Prefix.Len))}
	}
	t.Fatalf("unexpected set element %s", raw)
	return SetElem{}
}

// NftTables lists the namespace's tables as "family name" lines.
func (n *NS) NftTables(t *testing.T) []string {
	t.Helper()
	var tables []string
	for _, line := range strings.Split(n.Cmd(t, "nft", "list", "tables"), "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "table "); ok {
			tables = append(tables, rest)
		}
	}
	return tables
}

var expires = regexp.MustCompile(` expires [0-9a-z]+`)

// NftTable lists one table without the ever-changing "expires" times, so
// that two listings compare equal when nothing was changed; "" when the
// table does not exist.
func (n *NS) NftTable(family, table string) string {
	out, err := n.Try("nft", "list", "table", family, table)
	if err != nil {
		return ""
	}
	return expires.ReplaceAllString(out, "")
}

// IpsetMembers lists an ipset's members with their timeouts; ok is false
// when the set does not exist.
func (n *NS) IpsetMembers(t *testing.T, set string) (elems map[netip.Prefix]SetElem, ok bool) {
	t.Helper()
	out, err := n.Try("ipset", "list", set)
	if err != nil {
		return nil, false
	}
	elems = map[netip.Prefix]SetElem{}
	_, members, _ := strings.Cut(out, "Members:\n")
	for _, line := range strings.Split(strings.TrimSpace(members), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		p, err := netip.ParsePrefix(f[0])
		if err != nil {
			a, aerr := netip.ParseAddr(f[0])
			if aerr != nil {
				t.Fatalf("ipset member %q", line)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		el := SetElem{Prefix: p}
		if len(f) >= 3 && f[1] == "timeout" {
			var secs int64
			fmt.Sscan(f[2], &secs)
			el.Expires = time.Duration(secs) * time.Second
		}
		elems[p] = el
	}
	return elems, true
}

// NftSetNames lists the names of a table's sets (none when the table does
// not exist).
func (n *NS) NftSetNames(t *testing.T, family, table string) []string {
	t.Helper()
	out, err := n.Try("nft", "-j", "list", "sets", family)
	if err != nil {
		t.Fatalf("nft list sets: %v: %s", err, out)
	}
	var doc struct {
		Nftables []struct {
			Set *struct{ Name, Table string } `json:"set"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("nft -j list sets: %v", err)
	}
	var names []string
	for _, o := range doc.Nftables {
		if o.Set != nil && o.Set.Table == table {
			names = append(names, o.Set.Name)
		}
	}
	return names
}

// IpsetNames lists the namespace's ipsets whose names match re.
func (n *NS) IpsetNames(t *testing.T, re *regexp.Regexp) []string {
	t.Helper()
	var names []string
	for _, s := range strings.Fields(n.Cmd(t, "ipset", "list", "-n")) {
		if re.MatchString(s) {
			names = append(names, s)
		}
	}
	return names
}
