package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	logtest "github.com/sirupsen/logrus/hooks/test"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bouncer"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bouncer/bouncertest"
)

// TestBouncerOnlyRefusesEngineCommands: with apiban.enabled false there is
// no engine, so what needs one is refused by name, status says the mode,
// and nothing takes the state file's lock or writes it.
func TestBouncerOnlyRefusesEngineCommands(t *testing.T) {
	path, dir := agreeFiles(t, agreePKI(t), bouncerOnlyOverlay+enabled)
	ctx := context.Background()
	for _, args := range [][]string{{"-once"}, {"-dry-run"}, {"sync"}, {"flush"}, {"check", "198.51.100.7"}} {
		code, _, stderr := runCaptured(ctx, append([]string{"-c", path}, args...)...)
		if code != 1 || !strings.Contains(stderr, "refused: "+bouncerOnlyMode) {
			t.Errorf("%v: exit %d, stderr:\n%s\nwant exit 1 and the refusal", args, code, stderr)
		}
	}
	code, stdout, stderr := runCaptured(ctx, "status", "-c", path)
	if code != 0 || !strings.Contains(stdout, "mode") || !strings.Contains(stdout, bouncerOnlyMode) ||
		!strings.Contains(stdout, "bouncer LAPI  https://127.0.0.1:9/") {
		t.Errorf("status: exit %d, stdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	for _, name := range []string{"state.json", "state.json.lock"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			t.Errorf("%s exists: bouncer-only mode must not touch the state file", name)
		}
	}
}

// The bouncer-only daemon serves the bouncer's figures and a plain
// /healthz through metrics.Listen; a busy port is logged and serves
// nothing; stop closes the port.
func TestBouncerOnlyMetrics(t *testing.T) {
	log, hook := logtest.NewNullLogger()
	b := bouncer.New(bouncertest.NewRecorder(true), bouncer.Options{})
	bound, stop := serveBouncerMetrics(context.Background(), "127.0.0.1:0", b.Collector(), log)
	if bound == nil {
		t.Fatalf("not serving: %v", hook.AllEntries())
	}
	get := func(path string) string {
		t.Helper()
		resp, err := http.Get("http://" + bound.String() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return string(body)
	}
	if m := get("/metrics"); !strings.Contains(m, "crowdsec_apiban_bridge_bouncer_kernel_elements 0") {
		t.Errorf("/metrics lacks the bouncer's figures:\n%.2000s", m)
	}
	if h := get("/healthz"); h != "ok: "+bouncerOnlyMode+"\n" {
		t.Errorf("/healthz: %q", h)
	}
	if again, _ := serveBouncerMetrics(context.Background(), bound.String(), b.Collector(), log); again != nil ||
		hook.LastEntry() == nil || hook.LastEntry().Message != "metrics disabled" {
		t.Errorf("a busy port: serving on %v, last log %+v", again, hook.LastEntry())
	}
	stop()
	if _, err := net.Dial("tcp", bound.String()); err == nil {
		t.Error("the port still answers after stop")
	}
}
