// Command demo runs the bridge's main job on an embedded default: the APIBAN
// simulator with a generated list, a real local CrowdSec LAPI, one sync,
// and `cscli decisions list --origin apiban` to show the result: the
// verdict, the first -rows rows of the table and the count (-rows 0, or
// `make demo DEMO_ROWS=0`, shows every row). Nothing leaves the machine
// and no APIBAN key is needed.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/apibansim"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/bridgetest"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/lapitest"
)

func main() {
	bridge := flag.String("bridge", "bin/crowdsec-apiban-bridge", "bridge binary to run")
	count := flag.Int("count", 600, "addresses the simulated APIBAN lists")
	rows := flag.Int("rows", 10, "rows of the decisions table to print; 0 = all")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *bridge, *count, *rows); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, bridge string, count, rows int) error {
	dir, err := os.MkdirTemp("", "apiban-bridge-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	fmt.Println("==> starting a local CrowdSec LAPI", lapitest.Version)
	l, err := lapitest.Launch(filepath.Join(dir, "lapi"))
	if err != nil {
		return err
	}
	defer l.Stop()
	password := randomHex()
	creds, err := l.AddMachineErr("crowdsec-apiban-bridge", password)
	if err != nil {
		return err
	}

	key := randomHex()
	sim := apibansim.New(apibansim.Options{Key: key})
	defer sim.Close()
	sim.Add(apibansim.PublicIPv4s(count, 1)...)
	sim.Add("192.168.1.20", "100.64.0.9") // never banned: not public
	fmt.Printf("==> simulated APIBAN at %s lists %d entries\n", sim.URL(), sim.Len())

	cfg := filepath.Join(dir, "crowdsec-apiban-bridge.yaml")
	if err := os.WriteFile(cfg, demoConfig(sim.URL(), l.URL, creds, dir), 0o600); err != nil {
		return err
	}
	fmt.Println("==> crowdsec-apiban-bridge --once")
	cmd := exec.CommandContext(ctx, bridge, "-c", cfg, "--once")
	cmd.Env = append(os.Environ(), "APIBAN_API_KEY="+key)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("bridge: %w", err)
	}

	n, err := countDecisions(l)
	if err != nil {
		return err
	}
	if n != count {
		return fmt.Errorf("FAILED: %d decisions from origin apiban in LAPI, want %d (the %d public addresses listed)", n, count, count)
	}
	fmt.Printf("==> OK: every public address APIBAN lists is a CrowdSec decision; the 2 not public were not pushed\n")

	fmt.Println("==> cscli decisions list --origin apiban")
	out, err := l.CscliErr("decisions", "list", "--origin", "apiban", "--limit", "0")
	if err != nil {
		os.Stdout.Write(out)
		return err
	}
	os.Stdout.Write(tableHead(out, rows))
	fmt.Printf("==> %d decisions from origin apiban are in LAPI (%d listed, 2 not public)\n", n, sim.Len())
	if rows > 0 && n > rows {
		fmt.Printf("    (the first %d rows above; every row: make demo DEMO_ROWS=0)\n", rows)
	}
	return nil
}

// tableHead keeps the header and the first rows of cscli's table, and its
// closing border; rows 0 keeps everything.
func tableHead(table []byte, rows int) []byte {
	lines := strings.SplitAfter(strings.TrimRight(string(table), "\n"), "\n")
	const header = 3 // border, column names, border
	if rows <= 0 || len(lines) <= header+rows+1 {
		return table
	}
	head := append(lines[:header+rows:header+rows], "| ... |\n", lines[len(lines)-1]+"\n")
	return []byte(strings.Join(head, ""))
}

// demoConfig is a normal bridge configuration pointed at the demo.
func demoConfig(apibanURL, lapiURL, creds, dir string) []byte {
	return bridgetest.Config{
		APIBAN:    bridgetest.APIBAN{APIKey: "${APIBAN_API_KEY}", URL: apibanURL},
		CrowdSec:  bridgetest.CrowdSec{LAPIURL: lapiURL, CredentialsFile: creds},
		StateFile: dir + "/state.json",
	}.YAML()
}

// countDecisions counts the active apiban decisions (raw output is CSV
// with one header line).
func countDecisions(l *lapitest.LAPI) (int, error) {
	out, err := l.CscliErr("decisions", "list", "--origin", "apiban", "--limit", "0", "-o", "raw")
	if err != nil {
		return 0, err
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return len(lines) - 1, nil
}

func randomHex() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}
