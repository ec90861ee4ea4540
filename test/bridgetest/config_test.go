package bridgetest

import (
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/config"
)

// Every field the builder writes is a key the config package reads, with
// the value the test set; zero values behind pointers are written.
func TestConfigLoads(t *testing.T) {
	dir := t.TempDir()
	path := Config{
		APIBAN: APIBAN{APIKey: "-k#1:", URL: "http://127.0.0.1:1", APIVersion: "v1", Set: "sip",
			PollInterval: time.Hour, MaxRequests: new(0), RateWindow: time.Second, FullResyncInterval: 2 * time.Hour,
			Timeout: 2 * time.Second, MaxRetries: new(0)},
		CrowdSec: CrowdSec{LAPIURL: "https://127.0.0.1:2/", Login: "m", Password: "p'w\": #x",
			InsecureSkipVerify: true},
		Decisions: Decisions{Duration: 3 * time.Hour, Origin: "o", BatchSize: 7, RefreshBefore: time.Hour,
			MaxNewPerSync: 9},
		Allowlist:  Allowlist{CIDRs: []string{"198.51.100.0/24"}, LAPIAllowlists: new(false)},
		StateFile:  dir + "/state.json",
		LogLevel:   "debug",
		Prometheus: Prometheus{Enabled: new(false), ListenAddr: "127.0.0.2", ListenPort: new(0)},
		Bouncer: Bouncer{Enabled: new(true), APIKey: "b", LAPIURL: "http://127.0.0.1:3/",
			UpdateFrequency: time.Second, Origins: []string{"apiban"}, Mode: "ipset", KeepOnExit: true},
		Extra: "log_max_age: 4",
	}.Write(t, dir)
	if st, err := os.Stat(path); err != nil {
		t.Fatal(err)
	} else if st.Mode().Perm() != 0o600 {
		t.Fatalf("%s has mode %v, want 0600", path, st.Mode())
	}
	c, err := config.LoadWith(path, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct {
		name      string
		got, want any
	}{
		{"apiban", c.APIBAN, config.APIBAN{Enabled: true, APIKey: "-k#1:", URL: "http://127.0.0.1:1", APIVersion: "v1", Set: "sip", Sets: []string{},
			PollInterval: time.Hour, MaxRequests: 0, RateWindow: time.Second, FullResyncInterval: 2 * time.Hour,
			Timeout: 2 * time.Second, MaxRetries: 0, MaxPages: 400}},
		{"crowdsec", c.CrowdSec, config.CrowdSec{LAPIURL: "https://127.0.0.1:2/", Login: "m", Password: "p'w\": #x",
			InsecureSkipVerify: true, Timeout: 30 * time.Second}},
		{"decisions", [6]any{c.Decisions.Duration, c.Decisions.Origin, c.Decisions.BatchSize, c.Decisions.RefreshBefore, c.Decisions.MaxNewPerSync},
			[6]any{3 * time.Hour, "o", 7, time.Hour, 9}},
		{"allowlist", [2]any{c.Allowlist.CIDRs, c.Allowlist.LAPIAllowlists}, [2]any{[]string{"198.51.100.0/24"}, false}},
		{"top level", [3]any{c.StateFile, c.LogLevel, c.LogMaxAge}, [3]any{dir + "/state.json", "debug", 4}},
		{"prometheus", c.Prometheus, config.Prometheus{Enabled: false, ListenAddr: "127.0.0.2", ListenPort: 0}},
		{"bouncer", [7]any{c.Bouncer.Enabled, c.Bouncer.APIKey, c.Bouncer.LAPIURL, c.Bouncer.UpdateFrequency, c.Bouncer.Origins, c.Bouncer.Mode, c.Bouncer.KeepOnExit},
			[7]any{true, "b", "http://127.0.0.1:3/", time.Second, []string{"apiban"}, "ipset", true}},
	} {
		if !reflect.DeepEqual(f.got, f.want) {
			t.Errorf("%s: loaded %+v, want %+v", f.name, f.got, f.want)
		}
	}
}
