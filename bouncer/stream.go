package bouncer

import (
	"fmt"
	"time"

	csbouncer "github.com/crowdsecurity/go-cs-bouncer"
)

// StreamOptions says how to read LAPI's decision stream: plain values, so
// that every reader of the stream (this bouncer, the APIBAN-compatible
// mirror) sets it up the same way with its own key.
type StreamOptions struct {
	APIURL             string
	APIKey             string
	CertPath           string
	KeyPath            string
	CACertPath         string
	InsecureSkipVerify bool
	UpdateFrequency    time.Duration
	// Origins filters decisions by origin; empty means every origin.
	Origins   []string
	UserAgent string
}

// OpenStream returns an initialised go-cs-bouncer StreamBouncer for Ip and
// Range decisions: Run(ctx) sends LAPI's answers on its Stream channel
// (the full list first, then deltas). It waits for LAPI at start rather
// than failing, since the bridge may start before it.
func OpenStream(o StreamOptions) (*csbouncer.StreamBouncer, error) {
	skip := o.InsecureSkipVerify
	sb := &csbouncer.StreamBouncer{
		APIKey: o.APIKey, APIUrl: o.APIURL,
		CertPath: o.CertPath, KeyPath: o.KeyPath, CAPath: o.CACertPath,
		InsecureSkipVerify: &skip, RetryInitialConnect: true,
		TickerInterval: o.UpdateFrequency.String(),
		Scopes:         []string{"ip", "range"},
		UserAgent:      o.UserAgent,
	}
	if len(o.Origins) > 0 {
		sb.Origins = o.Origins
	}
	if err := sb.Init(); err != nil {
		return nil, fmt.Errorf("decision stream: %w", err)
	}
	return sb, nil
}
