package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/apibansim"
)

func TestRunPrintsAddressAndServes(t *testing.T) {
	f, err := parseFlags([]string{"-listen", "127.0.0.1:0", "-key", "k", "-count", "3", "-max-requests", "0"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- run(ctx, f, pw) }()

	addr, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	addr = strings.TrimSpace(addr)
	if strings.HasSuffix(addr, ":0") || !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Fatalf("first line = %q, want the bound 127.0.0.1 address", addr)
	}
	resp, err := http.Get("http://" + addr + "/api/k/banned")
	if err != nil {
		t.Fatal(err)
	}
	var batch struct {
		IPAddress []string `json:"ipaddress"`
		ID        string   `json:"ID"`
	}
	err = json.NewDecoder(resp.Body).Decode(&batch)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || len(batch.IPAddress) != 3 {
		t.Fatalf("got %d %+v (%v), want a batch of 3 addresses", resp.StatusCode, batch, err)
	}
	for _, ip := range batch.IPAddress {
		if !apibansim.IsPublic(netip.MustParseAddr(ip)) {
			t.Errorf("generated %s, not a public-looking address", ip)
		}
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("run did not return after cancel")
	}
}

func TestParseFlagsRejects(t *testing.T) {
	for _, args := range [][]string{{"-count", "-1"}, {"-rate-window", "0s"}, {"extra"}} {
		if _, err := parseFlags(args, io.Discard); err == nil {
			t.Errorf("parseFlags(%q) accepted", args)
		}
	}
}
