package apiban

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/source"
)

// target is one request, with its URL twice: the one sent, and the one
// shown in errors and logs, where the key is replaced.
type target struct {
	method string
	url    string
	shown  string
	body   []byte // v2 only
}

func (t target) String() string { return t.method + " " + t.shown }

// target builds the list request after cursor for the configured API.
func (c *Client) target(cursor string) target {
	if c.cfg.Version == "v1" {
		return c.v1Target("banned", cursor)
	}
	return c.v2Target("get", struct {
		Set string `json:"set"`
		ID  string `json:"id"`
	}{c.cfg.Set, cursor})
}

// v1Target is GET {base}/api/{KEY}/{verb}/{arg}: the key sits in the path,
// so the shown form carries the redacted key instead.
func (c *Client) v1Target(verb, arg string) target {
	path := func(key string) string {
		return c.cfg.BaseURL + "/api/" + url.PathEscape(key) + "/" + verb + "/" + url.PathEscape(arg)
	}
	return target{method: http.MethodGet, url: path(c.cfg.APIKey), shown: path(redactedKey)}
}

// v2Target is POST {base}/api/{verb} with a JSON body; the key travels in
// the Authorization header.
func (c *Client) v2Target(verb string, payload any) target {
	// Marshalling a struct of strings cannot fail.
	body, _ := json.Marshal(payload)
	u := c.cfg.BaseURL + "/api/" + verb
	return target{method: http.MethodPost, url: u, shown: u, body: body}
}

func (c *Client) newRequest(ctx context.Context, t target) (*http.Request, error) {
	var body io.Reader
	if t.body != nil {
		body = bytes.NewReader(t.body)
	}
	req, err := http.NewRequestWithContext(ctx, t.method, t.url, body)
	if err != nil {
		// err quotes the URL, key included: say only where it happened.
		return nil, fmt.Errorf("cannot build request %s", t)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)
	if t.body != nil {
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+c.cfg.APIKey)
	}
	return req, nil
}

const userAgent = "crowdsec-apiban-bridge"

// response is what one exchange produced before classification.
type response struct {
	status int
	body   []byte
	// readErr is set when the body could not be read whole; tooBig when
	// it went past the cap.
	readErr *failure
	tooBig  bool
	// location is a redirect's target as it may be shown: no key, no
	// user info, no query; "" when the answer is not a redirect.
	location string
}

// exchange sends one request and reads its body, within the timeout.
func (c *Client) exchange(ctx context.Context, t target) (response, *failure) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	req, err := c.newRequest(ctx, t)
	if err != nil {
		return response{}, &failure{class: ErrTransport, detail: err.Error()}
	}
	c.requests.Add(1)
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return response{}, c.transportFailure(ctx, err)
	}
	defer resp.Body.Close()
	r := response{status: resp.StatusCode}
	if loc := resp.Header.Get("Location"); loc != "" && isRedirect(resp.StatusCode) {
		r.location = shownLocation(loc, c.secrets)
	}
	r.body, r.tooBig, err = readCapped(resp.Body, c.cfg.MaxBodyBytes)
	if err != nil {
		r.readErr = c.transportFailure(ctx, err)
	}
	return r, nil
}

// readCapped reads at most limit bytes and says whether there was more.
func readCapped(r io.Reader, limit int64) ([]byte, bool, error) {
	body, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, false, err
	}
	if int64(len(body)) > limit {
		return nil, true, nil
	}
	return body, false, nil
}

// transportFailure words a failed exchange without the *url.Error that
// net/http wraps around it, since that quotes the URL with the key.
func (c *Client) transportFailure(ctx context.Context, err error) *failure {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	f := &failure{class: ErrTransport, retry: true, detail: "no usable response", cause: scrub(err, c.secrets)}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		f.detail = "timed out after " + c.cfg.Timeout.String()
	}
	return f
}

// outcome classifies a response as a page or a failure.
func (c *Client) outcome(r response, sent string) (source.Page, *failure) {
	decisive := r.status == http.StatusUnauthorized || r.status == http.StatusForbidden ||
		r.status == http.StatusTooManyRequests || r.status >= 500
	switch {
	case r.location != "":
		return source.Page{}, redirected(r)
	case decisive:
		// The status says it all; a body cut short does not matter.
		return classify(r.status, nil, sent)
	case r.readErr != nil:
		return source.Page{}, r.readErr
	case r.tooBig:
		return source.Page{}, newFailure(ErrBadResponse, r.status == http.StatusOK,
			"status %d: body larger than the %s cap", r.status, byteSize(c.cfg.MaxBodyBytes))
	}
	return classify(r.status, r.body, sent)
}

// byteSize prints a cap the way it was most likely configured.
func byteSize(n int64) string {
	if n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}

// noRedirects is the HTTP client's redirect policy: APIBAN needs none,
// and following one would send the key (in the v1 path, or the v2 header
// on a same-host hop) wherever the answer points. The 3xx comes back as
// the response and outcome words it.
func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

func isRedirect(status int) bool {
	switch status {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return true
	}
	return false
}

// redirected words a redirect that was not followed.
func redirected(r response) *failure {
	return newFailure(ErrBadResponse, false,
		"APIBAN answered %d redirect to %s; redirects are not followed", r.status, r.location)
}

// maxShownLocation bounds a redirect target quoted in an error.
const maxShownLocation = 200

// shownLocation is a Location header fit for an error: scheme, host and
// path only, the key replaced wherever it appears (the path is decoded
// first, so every escaping of the key is caught), and cut to a length.
func shownLocation(raw string, secrets []string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "an unreadable location"
	}
	hide := func(s string) string {
		for _, sec := range secrets {
			if sec != "" {
				s = strings.ReplaceAll(s, sec, redactedKey)
			}
		}
		return s
	}
	shown := hide((&url.URL{Scheme: u.Scheme, Host: hide(u.Host), Path: hide(u.Path)}).String())
	if len(shown) > maxShownLocation {
		shown = shown[:maxShownLocation] + "..."
	}
	return shown
}
