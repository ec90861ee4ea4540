package bridgetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Result is one finished run of a binary.
type Result struct {
	Code           int // exit code; -1 when killed by a signal
	Stdout, Stderr string
	combined       string
}

// Combined is stdout and stderr as the child interleaved them.
func (r Result) Combined() string { return r.combined }

// Run runs bin with args, waits up to timeout for it (then kills it) and
// returns its output and exit code. Failing to start it, or any error
// other than a non-zero exit, is fatal.
func Run(t testing.TB, timeout time.Duration, bin string, args ...string) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var out, errb bytes.Buffer
	var all Buffer
	cmd.Stdout, cmd.Stderr = io.MultiWriter(&out, &all), io.MultiWriter(&errb, &all)
	err := cmd.Run()
	r := Result{Stdout: out.String(), Stderr: errb.String(), combined: all.String()}
	if err != nil {
		var exitErr *exec.ExitError
		if !errors.As(err, &exitErr) {
			t.Fatalf("running %s: %v", bin, err)
		}
		r.Code = exitErr.ExitCode()
	}
	return r
}

// AssertNoSecrets fails the test (without stopping it) if out holds any
// of secrets, and reports false then. The report names the secret by its
// index in secrets and never shows it, nor out.
func AssertNoSecrets(t testing.TB, out string, secrets ...string) bool {
	t.Helper()
	for i, s := range secrets {
		if s != "" && strings.Contains(out, s) {
			t.Errorf("secret #%d (of %d) reached the output (%d bytes, not shown)", i, len(secrets), len(out))
			return false
		}
	}
	return true
}

// Redact returns out with each of secrets replaced by a marker naming its
// index, for logging output that may hold them.
func Redact(out string, secrets ...string) string {
	for i, s := range secrets {
		if s != "" {
			out = strings.ReplaceAll(out, s, fmt.Sprintf("<secret #%d>", i))
		}
	}
	return out
}

// Head returns at most the first n elements of s, to keep a report short.
func Head[T any](s []T, n int) []T { return s[:min(len(s), n)] }
