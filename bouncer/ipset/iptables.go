package ipset

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bouncer"
)

// addRules creates our chain in both families with one drop rule per
// slot, then the jumps to it.
func (b *Backend) addRules(ctx context.Context, slots int) error {
	for _, f := range families {
		if err := b.iptables(ctx, f, "-N", b.opts.Chain); err != nil {
			return err
		}
		for slot := range slots {
			if err := b.addDropRule(ctx, f, slot); err != nil {
				return err
			}
		}
		for _, hook := range b.opts.Hooks {
			if err := b.iptables(ctx, f, "-I", hook, "1", "-j", b.opts.Chain); err != nil {
				return err
			}
		}
	}
	return nil
}

func (b *Backend) addDropRule(ctx context.Context, f family, slot int) error {
	return b.iptables(ctx, f, "-A", b.opts.Chain, "-m", "set", "--match-set", b.set(slot, f), "src", "-j", "DROP")
}

// teardownRules removes our jumps and chain, whatever is left of them.
// Errors mean "not there" and are ignored.
func (b *Backend) teardownRules(ctx context.Context) {
	for _, f := range families {
		for _, hook := range []string{"INPUT", "FORWARD"} {
			// Bounded: a crash loop could have left several jumps.
			for range 16 {
				if b.iptables(ctx, f, "-D", hook, "-j", b.opts.Chain) != nil {
					break
				}
			}
		}
		_ = b.iptables(ctx, f, "-F", b.opts.Chain)
		_ = b.iptables(ctx, f, "-X", b.opts.Chain)
	}
}

// iptables runs iptables or ip6tables. Every argument is a constant, our
// chain or one of our generated set names: never an origin or decision
// data.
func (b *Backend) iptables(ctx context.Context, f family, args ...string) error {
	_, err := b.iptablesOutput(ctx, f, args...)
	return err
}

func (b *Backend) iptablesOutput(ctx context.Context, f family, args ...string) (string, error) {
	argv := append(append(append([]string{}, b.opts.CommandPrefix...), f.iptables, "-w"), args...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("ipset: %s %s: %w: %s", f.iptables, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

// Dropped implements bouncer.CounterReader: the counters of our drop
// rules, by the origin the registry gives the slot whose set each one
// matches, and by family (iptables counts IPv4, ip6tables IPv6). Every
// slot appears, with zero counters if nothing was dropped. It reads only
// the kernel, so another process (a test, a status command) gets the
// same answer as the bouncer.
func (b *Backend) Dropped(ctx context.Context) (map[bouncer.DropKey]bouncer.Counters, error) {
	origins, err := b.readRegistry()
	if err != nil {
		return nil, err
	}
	out := map[bouncer.DropKey]bouncer.Counters{}
	for _, f := range families {
		text, err := b.iptablesOutput(ctx, f, "-L", b.opts.Chain, "-v", "-x", "-n")
		if err != nil {
			return nil, err
		}
		for set, c := range parseCounters(text) {
			slot, v6, ok := ElementSet(b.opts.SetPrefix, set)
			origin, known := origins[slot]
			if !ok || v6 != f.v6 || !known || set != b.set(slot, f) {
				continue // not a rule of a registered slot
			}
			k := bouncer.DropKey{Origin: origin, IPType: f.ipType}
			out[k] = out[k].Plus(c)
		}
	}
	return out, nil
}

// parseCounters reads `iptables -L CHAIN -v -x -n`: the packets and bytes
// of each DROP rule, by the set its "match-set NAME src" names. Header
// lines and rules without a set are skipped; columns are found by
// content, not position, beyond the first three (the protocol and option
// columns differ between versions and families).
func parseCounters(out string) map[string]bouncer.Counters {
	sums := map[string]bouncer.Counters{}
	for line := range strings.Lines(out) {
		f := strings.Fields(line)
		if len(f) < 3 || f[2] != "DROP" {
			continue
		}
		pkts, perr := strconv.ParseUint(f[0], 10, 64)
		bytes, berr := strconv.ParseUint(f[1], 10, 64)
		set := matchSet(f)
		if perr != nil || berr != nil || set == "" {
			continue
		}
		c := sums[set]
		c.Packets += pkts
		c.Bytes += bytes
		sums[set] = c
	}
	return sums
}

// matchSet is the NAME of "match-set NAME src" in a rule's fields.
func matchSet(fields []string) string {
	for i := 3; i+1 < len(fields); i++ {
		if fields[i] == "match-set" {
			return fields[i+1]
		}
	}
	return ""
}
