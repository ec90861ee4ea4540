//go:build linux

package bouncer

import (
	"context"
	"os"
	"os/exec"
	"strings"

	"github.com/google/nftables"
)

// What crowdsec-firewall-bouncer creates or installs.
const (
	firewallBouncerUnit   = "crowdsec-firewall-bouncer"
	firewallBouncerConfig = "/etc/crowdsec/bouncers/crowdsec-firewall-bouncer.yaml"
	firewallBouncerChain  = "CROWDSEC_CHAIN"
)

var (
	firewallBouncerTables = []string{"crowdsec", "crowdsec6"}
	// Its ipsets: crowdsec-blacklists and crowdsec6-blacklists in 0.0.25
	// (Debian bookworm), numbered ones (crowdsec-blacklists-0) later.
	firewallBouncerSetPrefixes = []string{"crowdsec-blacklists", "crowdsec6-blacklists"}
)

// Probe looks for crowdsec-firewall-bouncer. It only reads. The zero
// value probes the host.
type Probe struct {
	// NetNSFd, when not 0, is the network namespace to look in, and
	// CommandPrefix runs iptables there (tests).
	NetNSFd       int
	CommandPrefix []string
	// ConfigPath is its configuration file ("" means the packaged path).
	ConfigPath string
	// UnitActive reports whether a systemd unit runs (nil asks systemctl).
	UnitActive func(ctx context.Context, unit string) bool
}

// DetectFirewallBouncer probes the host; see Probe.Detect.
func DetectFirewallBouncer(ctx context.Context) []string { return Probe{}.Detect(ctx) }

// Detect returns the lines to log when crowdsec-firewall-bouncer is
// present (its nftables tables, ipsets, iptables chain, configuration file
// or running unit), with advice; none when it is absent.
func (p Probe) Detect(ctx context.Context) []string {
	var found []string
	found = append(found, p.tables()...)
	found = append(found, p.ipsets(ctx)...)
	if p.chainExists(ctx) {
		found = append(found, "iptables chain "+firewallBouncerChain)
	}
	found = append(found, p.inputRules(ctx)...)
	cfg := p.ConfigPath
	if cfg == "" {
		cfg = firewallBouncerConfig
	}
	if _, err := os.Stat(cfg); err == nil {
		found = append(found, "configuration "+cfg)
	}
	active := p.UnitActive
	if active == nil {
		active = unitActive
	}
	if active(ctx, firewallBouncerUnit) {
		found = append(found, "active unit "+firewallBouncerUnit)
	}
	if len(found) == 0 {
		return nil
	}
	return []string{
		"bouncer: crowdsec-firewall-bouncer is present (" + strings.Join(found, ", ") +
			"); both run side by side, each with its own objects, and neither touches the other's",
		"bouncer: so that decisions are not enforced twice, either set bouncer.origins: [apiban] here " +
			"(the stock bouncer keeps enforcing the other origins) or run only one of the two " +
			"(bouncer.enabled: false, or systemctl disable --now crowdsec-firewall-bouncer)",
	}
}

func (p Probe) tables() []string {
	var opts []nftables.ConnOption
	if p.NetNSFd != 0 {
		opts = append(opts, nftables.WithNetNSFd(p.NetNSFd))
	}
	c, err := nftables.New(opts...)
	if err != nil {
		return nil
	}
	tables, err := c.ListTables()
	if err != nil {
		return nil
	}
	var found []string
	for _, t := range tables {
		for _, name := range firewallBouncerTables {
			if t.Name == name {
				found = append(found, "nftables table "+name)
			}
		}
	}
	return found
}

// ipsets lists the stock bouncer's sets with `ipset list -n` (constant
// arguments): netlink's set dump logs noise for attributes it does not
// know.
func (p Probe) ipsets(ctx context.Context) []string {
	argv := append(append([]string{}, p.CommandPrefix...), "ipset", "list", "-n")
	if _, err := exec.LookPath(argv[0]); err != nil {
		return nil
	}
	out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).Output()
	if err != nil {
		return nil
	}
	var found []string
	for _, name := range strings.Fields(string(out)) {
		if stockSet(name) {
			found = append(found, "ipset "+name)
		}
	}
	return found
}

func stockSet(name string) bool {
	for _, prefix := range firewallBouncerSetPrefixes {
		if strings.HasPrefix(name, prefix) {
			return true
		}
	}
	return false
}

// inputRules finds the stock bouncer's drop rules placed directly in
// INPUT (0.0.25 in iptables mode has no chain of its own), with
// `iptables -S INPUT` (constant arguments).
func (p Probe) inputRules(ctx context.Context) []string {
	var found []string
	for _, tool := range []string{"iptables", "ip6tables"} {
		argv := append(append([]string{}, p.CommandPrefix...), tool, "-w", "-S", "INPUT")
		if _, err := exec.LookPath(argv[0]); err != nil {
			continue
		}
		out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).Output()
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(out), "\n") {
			f := strings.Fields(line)
			for i := 0; i+1 < len(f); i++ {
				if f[i] == "--match-set" && stockSet(f[i+1]) {
					found = append(found, tool+" INPUT rule matching "+f[i+1])
				}
			}
		}
	}
	return found
}

// chainExists asks iptables (constant arguments, never feed data).
func (p Probe) chainExists(ctx context.Context) bool {
	argv := append(append([]string{}, p.CommandPrefix...), "iptables", "-w", "-S", firewallBouncerChain)
	if _, err := exec.LookPath(argv[0]); err != nil {
		return false
	}
	return exec.CommandContext(ctx, argv[0], argv[1:]...).Run() == nil
}

// unitActive asks systemd, when there is one, whether a unit runs.
func unitActive(ctx context.Context, unit string) bool {
	path, err := exec.LookPath("systemctl")
	if err != nil {
		return false
	}
	return exec.CommandContext(ctx, path, "is-active", "--quiet", unit).Run() == nil
}
