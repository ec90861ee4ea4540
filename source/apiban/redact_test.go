package apiban_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/source/apiban"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/apibansim"
)

// secretKey has characters that v1 path-escapes, so both its raw and its
// escaped form are looked for.
const secretKey = "S3CRET-k3y?x=1#zz"

func assertNoKey(t *testing.T, err error, logs string) {
	t.Helper()
	forms := []string{secretKey, url.PathEscape(secretKey), "S3CRET"}
	for _, e := range errorTree(err) {
		var ue *url.Error
		if errors.As(e, &ue) {
			t.Errorf("error wraps a *url.Error: %v", ue)
		}
		for _, f := range forms {
			if strings.Contains(e.Error(), f) {
				t.Errorf("error text holds the key (%q): %s", f, e.Error())
			}
		}
	}
	for _, f := range forms {
		if strings.Contains(logs, f) {
			t.Errorf("log holds the key (%q):\n%s", f, logs)
		}
	}
}

func TestKeyNeverShown(t *testing.T) {
	type scenario struct {
		name  string
		setup func(t *testing.T, cfg *apiban.Config, sim *apibansim.Sim) context.Context
	}
	scenarios := []scenario{
		{"ok", func(*testing.T, *apiban.Config, *apibansim.Sim) context.Context { return context.Background() }},
		{"bad-key", func(_ *testing.T, cfg *apiban.Config, _ *apibansim.Sim) context.Context {
			cfg.APIKey = secretKey + "-wrong"
			return context.Background()
		}},
		{"refused", func(t *testing.T, cfg *apiban.Config, _ *apibansim.Sim) context.Context {
			cfg.BaseURL = "http://" + closedAddr(t)
			return context.Background()
		}},
		{"canceled", func(_ *testing.T, _ *apiban.Config, sim *apibansim.Sim) context.Context {
			sim.FailNext(apibansim.FaultHang)
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			_ = cancel // released by the timeout
			return ctx
		}},
		{"proxy-error", func(_ *testing.T, cfg *apiban.Config, _ *apibansim.Sim) context.Context {
			// A transport whose error quotes the URL, as proxies do.
			cfg.HTTPClient = &http.Client{Transport: quotingTransport{}}
			return context.Background()
		}},
	}
	for _, f := range apibansim.Faults() {
		scenarios = append(scenarios, scenario{"fault-" + f.String(),
			func(_ *testing.T, _ *apiban.Config, sim *apibansim.Sim) context.Context {
				sim.FailNext(f, f)
				return context.Background()
			}})
	}
	for _, version := range []string{"v1", "v2"} {
		for _, sc := range scenarios {
			t.Run(version+"/"+sc.name, func(t *testing.T) {
				sim := newSim(t, apibansim.Options{Key: secretKey})
				sim.Add("192.0.2.1")
				logs, logger := newLogCapture()
				cfg := faultConfig(sim, version)
				cfg.MaxRetries = 1
				cfg.Logger = logger
				ctx := sc.setup(t, &cfg, sim)
				_, err := newClient(t, cfg, apiban.WithClock(newFakeClock())).Next(ctx, "")
				if sc.name != "ok" && err == nil {
					t.Fatal("scenario did not fail")
				}
				if !strings.Contains(logs.String(), "apiban request") {
					t.Fatalf("no request was logged:\n%s", logs)
				}
				if version == "v1" && !strings.Contains(logs.String()+errString(err), "/api/REDACTED/banned/100") {
					t.Errorf("the redacted URL is shown nowhere:\n%s", logs)
				}
				assertNoKey(t, err, logs.String())
			})
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

type quotingTransport struct{}

func (quotingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return nil, errors.New("proxyconnect to " + r.URL.String() + " with " + r.Header.Get("Authorization") + " failed")
}
