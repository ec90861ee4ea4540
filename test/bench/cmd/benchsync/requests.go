package main

import (
	"context"
	"fmt"
	"time"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/config"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/source/apiban"
	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/apibansim"
)

// requestRow is one full pull of n entries by the APIBAN client.
type requestRow struct {
	n, client, sim, want, got int
}

// requestEfficiency pulls lists of each size from the start, pacing off,
// and counts the requests on both sides.
func requestEfficiency(sizes []int) ([]requestRow, error) {
	logf("APIBAN requests per full pull, N in %v", sizes)
	var rows []requestRow
	for _, n := range sizes {
		sim := apibansim.New(apibansim.Options{Key: apiKey, MaxRequests: apibansim.Unlimited})
		sim.Add(apibansim.PublicIPv4s(n, uint64(n)+1)...)
		c, err := apiban.New(feedConfig(sim.URL()))
		if err != nil {
			sim.Close()
			return nil, err
		}
		got, err := pull(c)
		row := requestRow{n: n, client: c.Requests(), sim: sim.Requests(), want: wantRequests(n), got: got}
		sim.Close()
		if err != nil {
			return nil, fmt.Errorf("N=%d: %w", n, err)
		}
		if row.got != n || row.client != row.want || row.sim != row.want {
			return rows, fmt.Errorf("N=%d: %d entries in %d requests (sim saw %d), want %d in %d", n, row.got, row.client, row.sim, n, row.want)
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// feedConfig is the client as the default configuration sets it up, with
// pacing off and a shorter timeout: the client fills no setting itself.
func feedConfig(url string) apiban.Config {
	d := config.Default().APIBAN
	return apiban.Config{
		BaseURL:    url,
		APIKey:     apiKey,
		Version:    d.APIVersion,
		Set:        d.Set,
		RateWindow: d.RateWindow,
		Timeout:    10 * time.Second,
		MaxPages:   d.MaxPages,
	}
}

// pull reads the feed from its start to its end and counts the entries.
func pull(c *apiban.Client) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cursor, n := "", 0
	for range 100_000 {
		b, err := c.Next(ctx, cursor)
		if err != nil {
			return n, err
		}
		n += len(b.Prefixes)
		cursor = b.Cursor
		if b.Last {
			return n, nil
		}
	}
	return n, fmt.Errorf("the feed never ended")
}

// pacingRow is one pull against a simulator that enforces the service's
// limit on a window scaled down from 2 minutes to 2 seconds.
type pacingRow struct {
	label          string
	clientMax      int
	requests, r429 int
	wall           time.Duration
}

// pacing: the documented limit is 11 requests per 2 minutes and the
// client's default is 10 per 2 minutes. Both windows scaled to 2 s, a
// pull of n entries (n/250+1 requests) must see no 429; the same pull
// with pacing off shows that the simulator does enforce the limit.
func pacing(n int) ([]pacingRow, error) {
	const window = 2 * time.Second
	logf("pacing: %d entries, simulator at 11 per %s", n, window)
	var rows []pacingRow
	for _, c := range []struct {
		label string
		max   int
	}{{"default pacing (10 per window)", 10}, {"pacing off", 0}} {
		sim := apibansim.New(apibansim.Options{Key: apiKey, MaxRequests: apibansim.DefaultMaxRequests, RateWindow: window})
		sim.Add(apibansim.PublicIPv4s(n, 11)...)
		fc := feedConfig(sim.URL())
		fc.MaxRequests, fc.RateWindow, fc.MaxRetries = c.max, window, 5
		cl, err := apiban.New(fc)
		if err != nil {
			sim.Close()
			return nil, err
		}
		start := time.Now()
		got, err := pull(cl)
		row := pacingRow{label: c.label, clientMax: c.max, requests: sim.Requests(), r429: sim.RateLimited(), wall: time.Since(start)}
		sim.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", c.label, err)
		}
		if got != n {
			return nil, fmt.Errorf("%s: pulled %d entries, want %d", c.label, got, n)
		}
		if c.max == 10 && row.r429 != 0 {
			return nil, fmt.Errorf("default pacing drew %d 429 answers", row.r429)
		}
		if c.max == 0 && row.r429 == 0 {
			return nil, fmt.Errorf("pacing off drew no 429: the simulator's limit is not in force, the check proves nothing")
		}
		logf("pacing: %s: %d requests, %d answered 429, %s", c.label, row.requests, row.r429, row.wall.Round(time.Millisecond))
		rows = append(rows, row)
	}
	return rows, nil
}
