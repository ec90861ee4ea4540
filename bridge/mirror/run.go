package mirror

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/sirupsen/logrus"

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
// closes: a full answer replaces the set (logged on log with what
// changed), any other is a delta.
func Feed(ctx context.Context, set *Set, answers <-chan bouncer.Answer, log logrus.FieldLogger) error {
	return bouncer.Consume(ctx, answers, "mirror", func(a bouncer.Answer, first bool) {
		if !a.Full || first {
			set.Apply(a.DecisionsStreamResponse)
			return
		}
		added, removed := set.Replace(a.DecisionsStreamResponse)
		l := log.WithFields(logrus.Fields{"added": added, "removed": removed, "entries": set.Len()})
		if added+removed > 0 {
			l.Warn("mirror: resync with LAPI's full list changed the served set (the stream had missed these changes)")
		} else {
			l.Info("mirror: resync with LAPI's full list: no change")
		}
	})
}

// Stream reads LAPI's decisions into set with the shared stream setup
// (the mirror's own bouncer key) until ctx ends, pulling the whole list
// again every resync (0: never).
func Stream(ctx context.Context, set *Set, o bouncer.StreamOptions, resync time.Duration, log logrus.FieldLogger) error {
	return bouncer.ReadStream(ctx, o, resync, "mirror", nil, func(ctx context.Context, answers <-chan bouncer.Answer) error {
		return Feed(ctx, set, answers, log)
	})
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
	if errors.Is(err, http.ErrServerClosed) {
		<-done // Shutdown has returned
		return nil
	}
	// The server never started (a bad certificate, a closed listener):
	// said now, not when the daemon stops.
	return err
}
