package lapi

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/crowdsecurity/crowdsec/pkg/apiclient"
)

// maxPlainBody bounds a request body once decompressed: LAPI itself
// refuses more than 50 MiB.
const maxPlainBody = 64 << 20

// plainRequestBodies lets the client fall back to uncompressed request
// bodies. pkg/apiclient 1.7 gzips every body over 5 KiB (Content-Encoding:
// gzip), which LAPI before 1.5 (Debian bookworm's 1.4.6) does not
// understand: it answers 400 "invalid character '\x1f' looking for
// beginning of value" and stores nothing. A LAPI that answers so once is
// sent plain bodies from then on, and the refused request is sent again
// uncompressed (safe even for an alert POST: nothing was stored). Newer
// LAPIs keep getting gzip.
func plainRequestBodies(api *apiclient.ApiClient) {
	if jwt, ok := api.GetClient().Transport.(*apiclient.JWTTransport); ok && jwt.Transport != nil {
		jwt.Transport = &gzipFallback{next: jwt.Transport}
	}
}

// gzipFallback undoes gzip Content-Encoding on request bodies once LAPI
// has refused one.
type gzipFallback struct {
	next  http.RoundTripper
	plain atomic.Bool // LAPI refused a gzip body: send plain ones
}

func (g *gzipFallback) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body == nil || req.Header.Get("Content-Encoding") != "gzip" {
		return g.next.RoundTrip(req)
	}
	if g.plain.Load() {
		return g.sendPlain(req, req.Body)
	}
	// The body is needed again only if LAPI refuses gzip. A request that
	// can give it again (GetBody: pkg/apiclient's always can) goes as it
	// is; only another one is read into memory first.
	first, again := req, req.GetBody
	if again == nil {
		zipped, err := io.ReadAll(io.LimitReader(req.Body, maxPlainBody+1))
		req.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("reading a LAPI request body: %w", err)
		}
		again = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(zipped)), nil }
		first = req.Clone(req.Context())
		first.Body, first.GetBody = io.NopCloser(bytes.NewReader(zipped)), again
	}
	resp, err := g.next.RoundTrip(first)
	if err != nil || !refusedGzip(resp) {
		return resp, err
	}
	g.plain.Store(true)
	body, err := again()
	if err != nil {
		return nil, fmt.Errorf("reading a LAPI request body again: %w", err)
	}
	return g.sendPlain(req, body)
}

// sendPlain sends req with body, its gzip body, inflated.
func (g *gzipFallback) sendPlain(req *http.Request, body io.ReadCloser) (*http.Response, error) {
	out, err := uncompressed(req, body)
	if err != nil {
		return nil, err
	}
	return g.next.RoundTrip(out)
}

// refusedGzip reports whether resp is LAPI refusing a gzip body it read as
// JSON; it consumes resp when it is.
func refusedGzip(resp *http.Response) bool {
	if resp.StatusCode < 400 {
		return false
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	// The first byte of gzip is 0x1f; the JSON escaping of the quote
	// around it varies, the rest does not.
	if strings.Contains(string(body), `x1f' looking for beginning of value`) {
		return true
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return false
}

// uncompressed is req with body, its gzip body, inflated.
func uncompressed(req *http.Request, body io.ReadCloser) (*http.Request, error) {
	plain, err := gunzip(body)
	if err != nil {
		return nil, err
	}
	out := req.Clone(req.Context())
	out.Header.Del("Content-Encoding")
	out.Body = io.NopCloser(bytes.NewReader(plain))
	out.ContentLength = int64(len(plain))
	out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(plain)), nil }
	return out, nil
}

func gunzip(body io.ReadCloser) ([]byte, error) {
	defer body.Close()
	zr, err := gzip.NewReader(body)
	if err != nil {
		return nil, fmt.Errorf("uncompressing a LAPI request body: %w", err)
	}
	plain, err := io.ReadAll(io.LimitReader(zr, maxPlainBody+1))
	if err != nil {
		return nil, fmt.Errorf("uncompressing a LAPI request body: %w", err)
	}
	if len(plain) > maxPlainBody {
		return nil, fmt.Errorf("LAPI request body larger than %d bytes", maxPlainBody)
	}
	return plain, nil
}

// maxAnswer caps what is read of one LAPI answer. Reading back 100,000
// decisions is about 25 MiB of JSON; anything near the cap is not a LAPI.
var maxAnswer int64 = 256 << 20 // a variable for the test of the cap

// capAnswers makes every answer body fail once it passes maxAnswer, so a
// broken or hostile peer cannot make the bridge read without end.
func capAnswers(api *apiclient.ApiClient) {
	if jwt, ok := api.GetClient().Transport.(*apiclient.JWTTransport); ok && jwt.Transport != nil {
		jwt.Transport = capBodies{next: jwt.Transport}
	}
}

type capBodies struct{ next http.RoundTripper }

func (c capBodies) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.next.RoundTrip(req)
	if err == nil && resp.Body != nil {
		resp.Body = &cappedBody{ReadCloser: resp.Body, left: maxAnswer}
	}
	return resp, err
}

// cappedBody errors, rather than ends quietly, past its limit: a cut JSON
// answer must not parse as a shorter valid one.
type cappedBody struct {
	io.ReadCloser
	left int64
}

func (b *cappedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, fmt.Errorf("LAPI answer larger than %d bytes", maxAnswer)
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	return n, err
}
