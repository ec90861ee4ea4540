package faults

import (
	"encoding/json"
	"fmt"
)

// parseDecisions reads `cscli decisions list -o json` into the set of
// values, and errors on a value with two active decisions: no fault may
// make the bridge push one address twice.
func parseDecisions(out []byte) (map[string]bool, error) {
	var alerts []struct {
		Decisions []struct {
			Value string `json:"value"`
		} `json:"decisions"`
	}
	if err := json.Unmarshal(out, &alerts); err != nil {
		return nil, fmt.Errorf("parsing cscli output: %w", err)
	}
	got := map[string]bool{}
	for _, a := range alerts {
		for _, d := range a.Decisions {
			if got[d.Value] {
				return nil, fmt.Errorf("%w: %s", errDuplicate, d.Value)
			}
			got[d.Value] = true
		}
	}
	return got, nil
}

var errDuplicate = fmt.Errorf("two active decisions for one address")
