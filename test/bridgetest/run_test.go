package bridgetest

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestRun(t *testing.T) {
	r := Run(t, time.Minute, "/bin/sh", "-c", "echo out; echo err >&2; exit 3")
	if r.Code != 3 || r.Stdout != "out\n" || r.Stderr != "err\n" {
		t.Errorf("got %+v", r)
	}
	if c := r.Combined(); len(c) != len("out\nerr\n") || !strings.Contains(c, "out\n") || !strings.Contains(c, "err\n") {
		t.Errorf("combined %q", c)
	}
	if r := Run(t, time.Minute, "/bin/sh", "-c", "true"); r.Code != 0 {
		t.Errorf("exit code %d, want 0", r.Code)
	}
}

// recorder records what a helper reports instead of failing.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func TestAssertNoSecrets(t *testing.T) {
	const out = "a log line with pw-123 and key-456 in it"
	rec := &recorder{TB: t}
	if !AssertNoSecrets(rec, out, "none", "") || len(rec.errs) != 0 {
		t.Fatalf("clean output reported: %q", rec.errs)
	}
	if AssertNoSecrets(rec, out, "none", "key-456", "pw-123") {
		t.Fatal("a leak was not reported")
	}
	if len(rec.errs) != 1 || !strings.Contains(rec.errs[0], "#1") ||
		strings.Contains(rec.errs[0], "key-456") || strings.Contains(rec.errs[0], "pw-123") {
		t.Fatalf("want one report naming #1 and no secret, got %q", rec.errs)
	}
	if got := Redact(out, "pw-123", "", "key-456"); got != "a log line with <secret #0> and <secret #2> in it" {
		t.Errorf("Redact: %q", got)
	}
}

func TestHead(t *testing.T) {
	if got := Head([]string{"a", "b", "c"}, 2); len(got) != 2 || got[1] != "b" {
		t.Errorf("Head 2 of 3: %v", got)
	}
	if got := Head([]int{1}, 5); len(got) != 1 {
		t.Errorf("Head 5 of 1: %v", got)
	}
	if got := Head[string](nil, 5); got != nil {
		t.Errorf("Head of nil: %v", got)
	}
}
