package service

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"
)

// Run serves the HTTP endpoints on addr while work runs, and stops the server
// once work returns. ctx cancellation (SIGINT/SIGTERM from Main) reaches work,
// which is expected to drain, flush and commit before returning nil. A failing
// listener cancels work.
func Run(ctx context.Context, log zerolog.Logger, addr string, reg *prometheus.Registry, checks []Check, work func(ctx context.Context) error) error {
	workCtx, stopWork := context.WithCancel(ctx)
	defer stopWork()
	serveCtx, stopServe := context.WithCancel(context.WithoutCancel(ctx))
	defer stopServe()
	var g errgroup.Group
	g.Go(func() error {
		err := Serve(serveCtx, addr, Handler(reg, checks...), log)
		if err != nil {
			stopWork()
		}
		return err
	})
	g.Go(func() error {
		// The server outlives a cancelled ctx until work has drained, so
		// /metrics and /healthz keep answering during shutdown.
		defer stopServe()
		return work(workCtx)
	})
	if err := g.Wait(); err != nil {
		return fmt.Errorf("run: %w", err)
	}
	log.Info().Msg("stopped")
	return nil
}

// WithDrain returns a context that is not cancelled with ctx but d after it:
// work already under way when a stop is requested (a batch being written, an
// offset being committed) gets d to finish instead of being cut short.
func WithDrain(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	drainCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(d, cancel)
		context.AfterFunc(drainCtx, func() { t.Stop() })
	})
	return drainCtx, func() { stop(); cancel() }
}
