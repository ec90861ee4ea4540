package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ns is a network namespace of ours ("bk-ROLE-RANDOM"), deleted by close
// or, whatever happens, by cleanupAll.
type ns struct {
	name string
	f    *os.File
}

var (
	mu      sync.Mutex
	created = map[string]*ns{}
	closing bool // set by cleanupAll: no namespace is created after it
)

func newNS(ctx context.Context, role string) (*ns, error) {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	name := "bk-" + role + "-" + hex.EncodeToString(b)
	mu.Lock()
	defer mu.Unlock()
	if closing {
		return nil, fmt.Errorf("ip netns add %s: shutting down", name)
	}
	if out, err := exec.CommandContext(ctx, "ip", "netns", "add", name).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("ip netns add %s: %w: %s", name, err, out)
	}
	n := &ns{name: name}
	created[name] = n
	f, err := os.Open("/run/netns/" + name)
	if err != nil {
		return nil, err
	}
	n.f = f
	if _, err := n.run(ctx, nil, "ip", "link", "set", "lo", "up"); err != nil {
		return nil, err
	}
	return n, nil
}

func (n *ns) fd() int { return int(n.f.Fd()) }

func (n *ns) close() {
	mu.Lock()
	defer mu.Unlock()
	n.closeLocked()
}

func (n *ns) closeLocked() {
	if n.f != nil {
		n.f.Close()
		n.f = nil
	}
	if created[n.name] == nil {
		return
	}
	delete(created, n.name)
	if out, err := exec.Command("ip", "netns", "del", n.name).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "benchkernel: ip netns del %s: %v: %s\n", n.name, err, out)
	}
}

// cleanupAll deletes every namespace this process created and has not
// deleted yet.
func cleanupAll() {
	mu.Lock()
	defer mu.Unlock()
	closing = true
	for _, n := range created {
		n.closeLocked()
	}
}

// run runs a command inside the namespace (ip netns exec: ip enters the
// namespace and execs the command, so the timed process is the command).
func (n *ns) run(ctx context.Context, stdin []byte, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", n.name}, args...)...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s (in %s): %w: %s", strings.Join(args, " "), n.name, err, oneLine(string(out)))
	}
	return out, nil
}

// timed is one timed process: wall time and its CPU (user+sys).
type timed struct {
	wall, cpu time.Duration
}

func (n *ns) timedRun(ctx context.Context, stdin []byte, args ...string) (timed, error) {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", n.name}, args...)...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	if err != nil {
		return timed{}, fmt.Errorf("%s (in %s): %w: %s", strings.Join(args, " "), n.name, err, oneLine(out.String()))
	}
	var cpu time.Duration
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	return timed{wall: wall, cpu: cpu}, nil
}

// selfCPU is this process's user+sys so far (netlink batches are
// processed by the kernel in the sending thread, so they count here).
func selfCPU() time.Duration {
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// do runs f on an OS thread inside the namespace. The thread is never
// given back to the runtime: it ends with the goroutine.
func (n *ns) do(f func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Setns(n.fd(), unix.CLONE_NEWNET); err != nil {
			done <- fmt.Errorf("setns %s: %w", n.name, err)
			return
		}
		done <- f()
	}()
	return <-done
}

// nftCount is the number of elements of an nftables set, from
// `nft -j list set` (an interval element counts once).
func (n *ns) nftCount(ctx context.Context, family, table, set string) (int, error) {
	out, err := n.run(ctx, nil, "nft", "-j", "list", "set", family, table, set)
	if err != nil {
		return 0, err
	}
	var doc struct {
		Nftables []struct {
			Set *struct {
				Elem []json.RawMessage `json:"elem"`
			} `json:"set"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		return 0, fmt.Errorf("nft -j list set %s: %w", set, err)
	}
	for _, o := range doc.Nftables {
		if o.Set != nil {
			return len(o.Set.Elem), nil
		}
	}
	return 0, fmt.Errorf("nft -j list set %s: no set in the output", set)
}

// ipsetCount is "Number of entries" of `ipset list -t`.
func (n *ns) ipsetCount(ctx context.Context, set string) (int, error) {
	out, err := n.run(ctx, nil, "ipset", "list", "-t", set)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, "Number of entries: "); ok {
			var c int
			_, err := fmt.Sscan(v, &c)
			return c, err
		}
	}
	return 0, fmt.Errorf("ipset list -t %s: no entry count", set)
}

func have(tool string) bool {
	_, err := exec.LookPath(tool)
	return err == nil
}

// runCmd runs a command in this process's namespace.
func runCmd(ctx context.Context, args ...string) ([]byte, error) {
	out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, oneLine(string(out)))
	}
	return out, nil
}
