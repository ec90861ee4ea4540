package ipset

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bouncer"
)

// replaceRules puts our chain, one drop rule per slot and the jumps to it
// in place, in one iptables-restore commit per family: the previous rules
// keep dropping until the new ones replace them, with no moment without
// either. Declaring our chain with --noflush creates it, or empties it if
// it exists; the jumps a previous run left (a crash loop may have left
// several) are deleted in the same commit. The script holds only
// constants, our chain and our generated set names.
func (b *Backend) replaceRules(ctx context.Context, slots []int) error {
	for _, f := range families {
		var script strings.Builder
		fmt.Fprintf(&script, "*filter\n:%s - [0:0]\n", b.opts.Chain)
		// Replies to this host's own connections go back to the
		// built-in chain (RETURN, not ACCEPT: the host's other rules
		// still see them); the comment marks the chain as ours.
		fmt.Fprintf(&script, "-A %s -m conntrack --ctstate ESTABLISHED,RELATED --ctdir REPLY -m comment --comment %s -j RETURN\n",
			b.opts.Chain, bouncer.Marker)
		for _, slot := range slots {
			fmt.Fprintf(&script, "-A %s -m set --match-set %s src -j DROP\n", b.opts.Chain, b.set(slot, f))
		}
		for _, hook := range []string{"INPUT", "FORWARD"} {
			n, err := b.jumps(ctx, f, hook)
			if err != nil {
				return err
			}
			for range n {
				fmt.Fprintf(&script, "-D %s -j %s\n", hook, b.opts.Chain)
			}
		}
		for _, hook := range b.opts.Hooks {
			fmt.Fprintf(&script, "-I %s 1 -j %s\n", hook, b.opts.Chain)
		}
		script.WriteString("COMMIT\n")
		if err := b.restore(ctx, f, script.String()); err != nil {
			return err
		}
	}
	return nil
}

// jumps counts the rules of a built-in chain that jump to ours.
func (b *Backend) jumps(ctx context.Context, f family, hook string) (int, error) {
	out, err := b.iptablesOutput(ctx, f, "-S", hook)
	if err != nil {
		return 0, err
	}
	n := 0
	for line := range strings.Lines(out) {
		if strings.TrimSpace(line) == "-A "+hook+" -j "+b.opts.Chain {
			n++
		}
	}
	return n, nil
}

// restore runs iptables-restore (ip6tables-restore) --noflush with script.
func (b *Backend) restore(ctx context.Context, f family, script string) error {
	argv := append(append([]string{}, b.opts.CommandPrefix...), f.iptables+"-restore", "-w", "--noflush")
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("ipset: %s-restore of chain %s: %w: %s", f.iptables, b.opts.Chain, err, strings.TrimSpace(string(out)))
	}
	return nil
}

func (b *Backend) addDropRule(ctx context.Context, f family, slot int) error {
	return b.iptables(ctx, f, "-A", b.opts.Chain, "-m", "set", "--match-set", b.set(slot, f), "src", "-j", "DROP")
}

// teardownRules removes our jumps and chain, whatever is left of them,
// in each family where the chain is ours (an error where it is not).
// Other errors mean "not there" and are ignored.
func (b *Backend) teardownRules(ctx context.Context) error {
	if err := b.checkChains(ctx); err != nil {
		return err
	}
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
	return nil
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
	_, origins, err := b.registryState()
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
