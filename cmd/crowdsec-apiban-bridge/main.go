// Command crowdsec-apiban-bridge keeps CrowdSec's Local API holding every
// address APIBAN lists.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
)

// cpuProfileEnv names a file to write a CPU profile of the whole process
// to: a benchmark aid (docs/benchmarks.md), read nowhere else and not a
// configuration setting.
const cpuProfileEnv = "CROWDSEC_APIBAN_BRIDGE_CPUPROFILE"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	stopProfile := startCPUProfile(os.Getenv(cpuProfileEnv))
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stopProfile()
	stop()
	os.Exit(code)
}

// startCPUProfile profiles the process into path ("" does nothing) until
// the returned function is called. A failure only loses the profile.
func startCPUProfile(path string) (stop func()) {
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err == nil {
		if err = pprof.StartCPUProfile(f); err != nil {
			f.Close()
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", cpuProfileEnv, err)
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}
