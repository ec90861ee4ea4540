package config

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
)

// SetPlaceholder stands for the set's name in decisions.scenario_template.
const SetPlaceholder = "{set}"

// Feed is one APIBAN set the bridge pulls, with the scenario its
// decisions carry and the state file that holds its cursor. Each feed is
// synced by its own engine (docs/architecture.md, "Several sets").
type Feed struct {
	Set       string
	Scenario  string
	StateFile string
}

// Feeds lists the sets to pull: apiban.set alone (decisions.scenario,
// state_file), or each of apiban.sets (decisions.scenario_template; sip
// keeps state_file, so an upgrade from the single set keeps its cursor,
// and another set gets state-SET.json beside it).
func (c *Config) Feeds() []Feed {
	if len(c.APIBAN.Sets) == 0 {
		return []Feed{{Set: c.APIBAN.Set, Scenario: c.Decisions.Scenario, StateFile: c.StateFile}}
	}
	out := make([]Feed, 0, len(c.APIBAN.Sets))
	for _, s := range c.APIBAN.Sets {
		out = append(out, Feed{
			Set:       s,
			Scenario:  strings.ReplaceAll(c.Decisions.ScenarioTemplate, SetPlaceholder, s),
			StateFile: SetStateFile(c.StateFile, s),
		})
	}
	return out
}

// SetStateFile is the state file of set: path itself for sip, else
// path's name with -SET before its extension (state-http.json).
func SetStateFile(path, set string) string {
	if set == "sip" {
		return path
	}
	ext := filepath.Ext(path)
	return strings.TrimSuffix(path, ext) + "-" + set + ext
}

// validateSets checks apiban.sets and decisions.scenario_template;
// setInFile says whether a file gives apiban.set, which apiban.sets
// replaces.
func (c *Config) validateSets(setInFile bool) []error {
	sets := c.APIBAN.Sets
	if len(sets) == 0 {
		return nil
	}
	var errs []error
	if setInFile {
		errs = append(errs, invalid("apiban.sets", "replaces apiban.set: give one of them, not both (remove apiban.set)"))
	}
	for i, s := range sets {
		key := fmt.Sprintf("apiban.sets[%d]", i)
		switch err := checkSet(c.APIBAN.APIVersion, s); {
		case err != nil:
			errs = append(errs, invalid(key, "%v", err))
		case slices.Index(sets, s) < i:
			errs = append(errs, invalid(key, "%q is listed twice", s))
		case s == "all" && len(sets) > 1:
			errs = append(errs, invalid(key, "all holds sip and http already: list it alone"))
		}
	}
	tmpl := c.Decisions.ScenarioTemplate
	if err := checkWord("decisions.scenario_template", tmpl); err != nil {
		errs = append(errs, err)
	} else if len(sets) > 1 && !strings.Contains(tmpl, SetPlaceholder) {
		errs = append(errs, invalid("decisions.scenario_template", "must contain %s when apiban.sets lists several sets (each set needs its own scenario), got %q", SetPlaceholder, tmpl))
	}
	return errs
}
