package apiban

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/source"
)

// PageSize is the most entries APIBAN returns per request; a shorter
// page is the last one.
const PageSize = 250

// reply is a response body as decoded, before it means anything.
// ipaddress comes as an array of addresses, or as a string in the
// status-like replies ("no new bans", "none", "rate limit exceeded").
type reply struct {
	entries   []string // string elements of an ipaddress array
	nonString int      // other elements of that array
	isArray   bool
	text      string // ipaddress when it is a string
	id        string // "" when absent or null
	// overLong is the length of an ipaddress array longer than PageSize,
	// whose elements were not decoded; 0 otherwise.
	overLong int
}

type wireReply struct {
	IPAddress json.RawMessage `json:"ipaddress"`
	ID        json.RawMessage `json:"ID"`
}

func decodeReply(body []byte) (reply, error) {
	var w wireReply
	if err := json.Unmarshal(body, &w); err != nil {
		return reply{}, fmt.Errorf("body is not a JSON object: %w", err)
	}
	id, err := DecodeID(w.ID)
	if err != nil {
		return reply{}, err
	}
	r := reply{id: id}
	return r, r.decodeIPAddress(w.IPAddress)
}

// DecodeID reads APIBAN's ID field, which comes as a string or a
// number; absent or null is "". The mirror reads its clients' IDs with it.
func DecodeID(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, nil
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String(), nil
	}
	return "", errors.New("ID is neither a string nor a number")
}

func (r *reply) decodeIPAddress(raw json.RawMessage) error {
	switch {
	case len(raw) == 0 || string(raw) == "null":
		return nil
	case raw[0] == '"':
		return json.Unmarshal(raw, &r.text)
	case raw[0] == '[':
		return r.decodeEntries(raw)
	}
	return errors.New("ipaddress is neither a list nor a string")
}

// decodeEntries keeps string elements and counts the others, so that one
// odd element costs one entry, not the page. A list longer than a page
// is only counted: it will be refused whole, so its elements are not
// decoded.
func (r *reply) decodeEntries(raw json.RawMessage) error {
	var elems []json.RawMessage
	if err := json.Unmarshal(raw, &elems); err != nil {
		return fmt.Errorf("ipaddress list: %w", err)
	}
	r.isArray = true
	if len(elems) > PageSize {
		r.overLong = len(elems)
		return nil
	}
	r.entries = make([]string, 0, len(elems))
	for _, e := range elems {
		var s string
		if json.Unmarshal(e, &s) != nil {
			r.nonString++
			continue
		}
		r.entries = append(r.entries, s)
	}
	return nil
}

// noNewBans reports the "no new bans" body, as an array or a string.
func (r reply) noNewBans() bool {
	is := func(s string) bool { return strings.EqualFold(strings.TrimSpace(s), "no new bans") }
	if r.isArray {
		return len(r.entries) == 1 && r.nonString == 0 && is(r.entries[0])
	}
	return is(r.text)
}

// classify reads one response: status code first, then body. sent is the
// cursor of the request.
func classify(status int, body []byte, sent string) (source.Page, *failure) {
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return source.Page{}, newFailure(ErrUnauthorized, false, "status %d", status)
	case status == http.StatusTooManyRequests:
		return source.Page{}, newFailure(ErrRateLimited, true, "status 429")
	case status >= 500:
		return source.Page{}, newFailure(ErrServer, true, "status %d", status)
	}
	r, err := decodeReply(body)
	if err != nil {
		// A 200 that does not decode was most likely damaged on the way;
		// any other status is one we cannot read, and asking again will
		// not change it.
		return source.Page{}, newFailure(ErrBadResponse, status == http.StatusOK, "status %d: %v", status, err)
	}
	if isEnd(status, r) {
		return source.Page{Cursor: sent, Last: true}, nil
	}
	if status != http.StatusOK {
		return source.Page{}, newFailure(ErrBadResponse, false, "unexpected status %d", status)
	}
	return pageOf(r, sent)
}

// isEnd: ID "none" means done whatever the (non-error) status; the
// "no new bans" body means done on the statuses it is known to come with.
func isEnd(status int, r reply) bool {
	if r.id == "none" {
		return true
	}
	knownStatus := status == http.StatusOK || status == http.StatusBadRequest || status == http.StatusNotFound
	return knownStatus && r.noNewBans()
}

// pageOf turns a 200 reply into a page.
func pageOf(r reply, sent string) (source.Page, *failure) {
	if !r.isArray {
		return source.Page{}, newFailure(ErrBadResponse, true, "status 200 without an ipaddress list")
	}
	if r.overLong > 0 {
		// APIBAN never sends more than a page: a longer one is a broken
		// or hostile feed, and none of it may reach LAPI.
		return source.Page{}, newFailure(ErrBadResponse, false,
			"page of %d entries, more than APIBAN's %d per page: refused whole", r.overLong, PageSize)
	}
	if !validCursor(r.id) {
		return source.Page{}, newFailure(ErrBadResponse, true, "status 200 with a missing or malformed ID")
	}
	b := source.Page{Cursor: r.id, Invalid: r.nonString, Prefixes: make([]netip.Prefix, 0, len(r.entries))}
	for _, e := range r.entries {
		p, err := ParseEntry(e)
		if err != nil {
			b.Invalid++
			continue
		}
		b.Prefixes = append(b.Prefixes, p)
	}
	b.Last = len(r.entries)+r.nonString < PageSize
	if !b.Last && r.id == sent {
		// A full page that does not move the cursor would make the
		// caller ask for the same page forever.
		return source.Page{}, newFailure(ErrBadResponse, false, "full page did not move past the requested cursor %s", sent)
	}
	return b, nil
}

// validCursor keeps the opaque ID to a token safe to log, store and put
// in a URL path; APIBAN's are digits.
func validCursor(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range id {
		ok := c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-' || c == '_'
		if !ok {
			return false
		}
	}
	return true
}
