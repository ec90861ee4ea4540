// Command crowdsec-apiban-bridge keeps CrowdSec's Local API holding every
// address APIBAN lists.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"syscall"
)

// cpuProfileEnv and heapProfileEnv name files to write a CPU profile of
// the whole process, and a heap profile at its end, to: benchmark aids
// (docs/benchmarks.md), read nowhere else and not configuration settings.
const (
	cpuProfileEnv  = "CROWDSEC_APIBAN_BRIDGE_CPUPROFILE"
	heapProfileEnv = "CROWDSEC_APIBAN_BRIDGE_HEAPPROFILE"
)

// defaultMemoryLimit is Go's soft memory limit when GOMEMLIMIT sets none
// (docs/operations.md, "Memory").
const defaultMemoryLimit = 64 << 20

func main() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	stopProfile := startCPUProfile(os.Getenv(cpuProfileEnv))
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stopProfile()
	writeHeapProfile(os.Getenv(heapProfileEnv))
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

// writeHeapProfile writes the heap profile to path ("" does nothing).
func writeHeapProfile(path string) {
	if path == "" {
		return
	}
	f, err := os.Create(path)
	if err == nil {
		err = pprof.Lookup("allocs").WriteTo(f, 1) // text, with the runtime's memory statistics at the end
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", heapProfileEnv, err)
	}
}
