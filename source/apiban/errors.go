package apiban

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Error classes of Next, for errors.Is. Every error Next returns wraps
// exactly one of them, or the context's error when ctx ended.
var (
	// ErrUnauthorized: the key was refused (403 or 401). Never retried.
	ErrUnauthorized = errors.New("apiban: unauthorized: the API key was refused")
	// ErrRateLimited: still 429 after the retries.
	ErrRateLimited = errors.New("apiban: rate limited")
	// ErrServer: still 5xx after the retries.
	ErrServer = errors.New("apiban: server error")
	// ErrBadResponse: a reply that is neither a page nor an end of the
	// list (unparsable, truncated, oversized, unexpected status).
	ErrBadResponse = errors.New("apiban: bad response")
	// ErrTransport: the request itself failed (connection refused or
	// reset, timeout, TLS) after the retries.
	ErrTransport = errors.New("apiban: request failed")
)

// redactedKey stands in for the key wherever a URL is shown.
const redactedKey = "REDACTED"

// scrubbed is an error whose text had the key replaced. It is the last
// line of defence for causes the client did not word itself, such as a
// proxy or TLS error quoting a URL. It unwraps only to the classes, never
// to the cause whose text held the key.
type scrubbed struct {
	msg     string
	classes []error
}

func (e *scrubbed) Error() string   { return e.msg }
func (e *scrubbed) Unwrap() []error { return e.classes }

// scrub hides the secrets (the key, raw and URL-escaped) in err's text,
// keeping what errors.Is can see of the classes and of the context. It
// returns err itself when it is clean.
func scrub(err error, secrets []string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	for _, s := range secrets {
		if s != "" {
			msg = strings.ReplaceAll(msg, s, redactedKey)
		}
	}
	if msg == err.Error() {
		return err
	}
	sc := &scrubbed{msg: msg}
	for _, class := range []error{ErrUnauthorized, ErrRateLimited, ErrServer, ErrBadResponse,
		ErrTransport, context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, class) {
			sc.classes = append(sc.classes, class)
		}
	}
	return sc
}

// failure is one failed attempt: its class, whether trying again may
// help, and a description that never holds the key.
type failure struct {
	class  error
	retry  bool
	detail string
	where  string // method and redacted URL, once known
	cause  error  // optional; never a *url.Error
}

func newFailure(class error, retry bool, format string, args ...any) *failure {
	return &failure{class: class, retry: retry, detail: fmt.Sprintf(format, args...)}
}

func (f *failure) Error() string {
	msg := f.class.Error()
	if f.where != "" {
		msg += ": " + f.where
	}
	msg += ": " + f.detail
	if f.cause != nil {
		msg += ": " + f.cause.Error()
	}
	return msg
}

func (f *failure) Unwrap() []error {
	if f.cause == nil {
		return []error{f.class}
	}
	return []error{f.class, f.cause}
}
