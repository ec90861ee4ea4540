// Package source defines what the bridge needs from a blocklist feed: the
// next page of addresses after a cursor. Feeds live in sub-packages.
package source

import (
	"context"
	"net/netip"
)

// Page is one page of a feed.
type Page struct {
	// Prefixes are the valid entries of the page in the normal form
	// ParsePrefix gives: a single address is a /32 or /128 prefix,
	// IPv4-mapped IPv6 is unmapped, and host bits are masked off.
	Prefixes []netip.Prefix
	// Invalid counts entries of the page that were skipped because they do
	// not parse as an address or prefix.
	Invalid int
	// Cursor resumes the feed after this page. It is opaque to the caller
	// and must only be persisted once the page has been handled.
	Cursor string
	// Last is true when the feed has nothing after this page.
	Last bool
}

// Source is a paged blocklist feed.
type Source interface {
	// Next returns the page that follows cursor; "" means the start of
	// the feed.
	Next(ctx context.Context, cursor string) (Page, error)
}
