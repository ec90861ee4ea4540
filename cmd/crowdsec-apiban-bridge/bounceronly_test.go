package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
