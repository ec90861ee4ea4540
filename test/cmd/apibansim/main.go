// Command apibansim serves the APIBAN simulator on a TCP address so that
// `make demo` and the end-to-end tests can run the bridge against it as a
// separate process. The first line on stdout is the address served
// (host:port), which matters with -listen 127.0.0.1:0. It runs until
// SIGINT or SIGTERM.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/test/apibansim"
)

// flags are the command line, parsed.
type flags struct {
	listen      string
	key         string
	count       int
	maxRequests int
	rateWindow  time.Duration
	seed        uint64
}

func parseFlags(args []string, errOut io.Writer) (flags, error) {
	var f flags
	fs := flag.NewFlagSet("apibansim", flag.ContinueOnError)
	fs.SetOutput(errOut)
	fs.StringVar(&f.listen, "listen", "127.0.0.1:8089", "address to serve; port 0 picks a free one")
	fs.StringVar(&f.key, "key", apibansim.DefaultKey, "the API key accepted")
	fs.IntVar(&f.count, "count", 600, "number of listed addresses to generate")
	fs.IntVar(&f.maxRequests, "max-requests", apibansim.DefaultMaxRequests, "requests per rate window per key before 429; 0 disables the limit")
	fs.DurationVar(&f.rateWindow, "rate-window", apibansim.DefaultRateWindow, "sliding window of the rate limit")
	fs.Uint64Var(&f.seed, "seed", 1, "seed of the generated addresses")
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	if fs.NArg() > 0 {
		return f, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if f.count < 0 {
		return f, fmt.Errorf("-count must not be negative, got %d", f.count)
	}
	if f.rateWindow <= 0 {
		return f, fmt.Errorf("-rate-window must be positive, got %s", f.rateWindow)
	}
	return f, nil
}

func main() {
	f, err := parseFlags(os.Args[1:], os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "apibansim:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, f, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "apibansim:", err)
		os.Exit(1)
	}
}

// run serves until ctx ends.
func run(ctx context.Context, f flags, out io.Writer) error {
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	maxRequests := f.maxRequests
	if maxRequests <= 0 {
		maxRequests = apibansim.Unlimited
	}
	sim := apibansim.New(apibansim.Options{
		Key:         f.key,
		MaxRequests: maxRequests,
		RateWindow:  f.rateWindow,
		Listener:    ln,
	})
	defer sim.Close()
	sim.Add(apibansim.PublicIPv4s(f.count, f.seed)...)
	if _, err := fmt.Fprintln(out, sim.Addr()); err != nil {
		return fmt.Errorf("print address: %w", err)
	}
	<-ctx.Done()
	return nil
}
