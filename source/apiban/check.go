package apiban

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
)

// Check asks APIBAN whether addr is listed (v1 GET /api/KEY/check/IP, v2
// POST /api/check). It makes one paced request and does not retry: it
// serves an operator's question, not the sync.
func (c *Client) Check(ctx context.Context, addr netip.Addr) (bool, error) {
	t := c.checkTarget(addr.String())
	r, f := c.pacedExchange(ctx, t)
	if f == nil && r.status == http.StatusTooManyRequests {
		c.rateLimited.Add(1)
	}
	if f == nil {
		var listed bool
		listed, f = checkOutcome(r, addr)
		if f == nil {
			return listed, nil
		}
	}
	f.where = t.String()
	return false, scrub(f, c.secrets)
}

func (c *Client) checkTarget(ip string) target {
	if c.cfg.Version == "v1" {
		return c.v1Target("check", ip)
	}
	return c.v2Target("check", struct {
		Set       string `json:"set"`
		IPAddress string `json:"ipaddress"`
	}{c.cfg.Set, ip})
}

// checkOutcome: 200 naming the address is "listed"; 400 or 404 with ID
// "none" (or a "not blocked" text) is "not listed"; the rest is an error
// of the usual classes.
func checkOutcome(r response, addr netip.Addr) (bool, *failure) {
	switch {
	case r.location != "":
		return false, redirected(r)
	case r.status == http.StatusUnauthorized || r.status == http.StatusForbidden:
		return false, newFailure(ErrUnauthorized, false, "status %d", r.status)
	case r.status == http.StatusTooManyRequests:
		return false, newFailure(ErrRateLimited, false, "status %d", r.status)
	case r.status >= 500:
		return false, newFailure(ErrServer, false, "status %d", r.status)
	case r.readErr != nil:
		return false, r.readErr
	case r.tooBig:
		return false, newFailure(ErrBadResponse, false, "status %d: body too large", r.status)
	}
	rep, err := decodeReply(r.body)
	if err != nil {
		return false, newFailure(ErrBadResponse, false, "status %d: %v", r.status, err)
	}
	switch {
	case r.status == http.StatusOK && slices.Contains(rep.entries, addr.String()):
		return true, nil
	case rep.id == "none" || rep.text == "not blocked" || slices.Contains(rep.entries, "not blocked"):
		return false, nil
	}
	return false, newFailure(ErrBadResponse, false, "status %d: %s", r.status, fmt.Sprintf("unexpected check answer (ID %q)", rep.id))
}
