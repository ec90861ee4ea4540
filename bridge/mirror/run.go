package mirror

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/crowdsecurity/crowdsec/pkg/models"

	"github.com/crowdsec-apiban-bridge/crowdsec-apiban-bridge/bouncer"
)

// Server timeouts: every request is small and every answer at most the
// whole list, so a slow client is cut off rather than holding a worker.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 60 * time.Second
)

// Feed applies each answer of stream to set until ctx ends or stream
// closes.
func Feed(ctx context.Context, set *Set, stream <-chan *models.DecisionsStreamResponse) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case resp, ok := <-stream:
			if !ok {
				return errors.New("mirror: decision stream closed")
			}
			set.Apply(resp)
		}
	}
}

// Stream reads LAPI's decisions into set with the shared stream setup
// (the mirror's own bouncer key) until ctx ends.
func Stream(ctx context.Context, set *Set, o bouncer.StreamOptions) error {
	sb, err := bouncer.OpenStream(o)
	if err != nil {
		return fmt.Errorf("mirror: %w", err)
	}
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	runErr := make(chan error, 1)
	go func() { runErr <- sb.Run(ctx) }()
	err = Feed(ctx, set, sb.Stream)
	stop()
	if serr := <-runErr; err == nil && serr != nil && !errors.Is(serr, context.Canceled) {
		err = fmt.Errorf("mirror: stream: %w", serr)
	}
	return err
}

// Serve answers h on ln (HTTPS when certFile is set) until ctx ends.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, certFile, keyFile string) error {
	srv := &http.Server{
		Handler: h, ReadHeaderTimeout: readHeaderTimeout, ReadTimeout: readTimeout,
		WriteTimeout: writeTimeout, IdleTimeout: idleTimeout, MaxHeaderBytes: MaxHeaderBytes,
		ErrorLog: discardLog(),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shut)
	}()
	var err error
	if certFile != "" {
		err = srv.ServeTLS(ln, certFile, keyFile)
	} else {
		err = srv.Serve(ln)
	}
	<-done
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}
