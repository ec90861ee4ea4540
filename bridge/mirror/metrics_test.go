package mirror

import (
	"maps"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// Requests by endpoint and code, requests by key name (never the key),
// entries served and the set's size.
func TestMetrics(t *testing.T) {
	s := readySet(decision(5, "Ip", "203.0.113.7"), decision(7, "Range", "198.51.100.0/24"))
	m := NewMetrics(s)
	reg := prometheus.NewRegistry()
	reg.MustRegister(m.Collectors()...)
	u := serve(t, s, Options{Metrics: m}).URL
	do(t, "GET", u+"/api/"+testKey+"/banned/100", "", "")
	do(t, "GET", u+"/api/"+testKey+"/banned/1007", "", "")
	do(t, "GET", u+"/api/nope/banned/100", "", "")
	do(t, "GET", u+"/ipset/"+testKey+"/list", "", "")
	got := map[string]float64{}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if strings.Contains(f.String(), testKey) {
			t.Fatalf("the key is in metric %s", f.GetName())
		}
		for _, m := range f.GetMetric() {
			name := f.GetName()
			for _, l := range m.GetLabel() {
				name += "," + l.GetName() + "=" + l.GetValue()
			}
			got[name] = m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	want := map[string]float64{
		"crowdsec_apiban_bridge_mirror_client_requests_total,client=kamailio1":      3,
		"crowdsec_apiban_bridge_mirror_entries_served_total":                        4,
		"crowdsec_apiban_bridge_mirror_requests_total,code=200,endpoint=ipset_list": 1,
		"crowdsec_apiban_bridge_mirror_requests_total,code=200,endpoint=v1_banned":  1,
		"crowdsec_apiban_bridge_mirror_requests_total,code=400,endpoint=v1_banned":  1,
		"crowdsec_apiban_bridge_mirror_requests_total,code=403,endpoint=v1_banned":  1,
		"crowdsec_apiban_bridge_mirror_set_size":                                    2,
		"crowdsec_apiban_bridge_mirror_resyncs_total":                               0,
		"crowdsec_apiban_bridge_mirror_resync_added_total":                          0,
		"crowdsec_apiban_bridge_mirror_resync_removed_total":                        0,
	}
	if !maps.Equal(got, want) {
		t.Fatalf("metrics\n got %v\nwant %v", got, want)
	}
}
