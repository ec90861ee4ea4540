package config

import (
	"reflect"
	"testing"
)

func TestFeeds(t *testing.T) {
	cases := []struct {
		name, overlay string
		want          []Feed
	}{
		{"the single set", "", []Feed{{"sip", "apiban/sip-blocklist", "/var/lib/crowdsec-apiban-bridge/state.json"}}},
		{"the single set keeps decisions.scenario", "apiban:\n  set: http\ndecisions:\n  scenario: my/http\nstate_file: /s/st.json\n",
			[]Feed{{"http", "my/http", "/s/st.json"}}},
		{"two sets", "apiban:\n  sets: [http, sip]\n", []Feed{
			{"http", "apiban/http-blocklist", "/var/lib/crowdsec-apiban-bridge/state-http.json"},
			{"sip", "apiban/sip-blocklist", "/var/lib/crowdsec-apiban-bridge/state.json"},
		}},
		{"one set without {set}", "apiban:\n  sets: [http]\ndecisions:\n  scenario_template: site/web\nstate_file: /s/state\n",
			[]Feed{{"http", "site/web", "/s/state-http"}}},
		{"all", "apiban:\n  sets: [all]\n", []Feed{{"all", "apiban/all-blocklist", "/var/lib/crowdsec-apiban-bridge/state-all.json"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := LoadBytes([]byte("crowdsec:\n  password: pw\n"+tc.overlay), envOf(map[string]string{EnvAPIKey: secretKey}))
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Feeds(); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Feeds() = %+v, want %+v", got, tc.want)
			}
		})
	}
}
