package service

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
)

// Check is one readiness condition, such as "Kafka is reachable".
type Check struct {
	Name  string
	Probe func(ctx context.Context) error
}

// Pending returns a readiness check that passes until set gives it the
// check it stands for: for a subject created after the HTTP server starts,
// such as the consumer group whose partitions it reports. Safe for
// concurrent use.
func Pending(name string) (c Check, set func(Check)) {
	var real atomic.Pointer[Check]
	c = Check{Name: name, Probe: func(ctx context.Context) error {
		if r := real.Load(); r != nil {
			return r.Probe(ctx)
		}
		return nil
	}}
	return c, func(r Check) { real.Store(&r) }
}

// probeTimeout bounds the readiness probes, which run concurrently, so
// /readyz answers within a second whatever a dependency does: a hung one
// makes it answer 503, not stall the orchestrator's probe.
const probeTimeout = 800 * time.Millisecond

// NewRegistry returns a registry with the Go runtime and process collectors,
// which every service exposes.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Handler serves /healthz (the process is alive), /readyz (every check passes,
// else 503 naming the failures) and /metrics from reg.
func Handler(reg *prometheus.Registry, checks ...Check) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), probeTimeout)
		defer cancel()
		failed := make([]error, len(checks))
		var wg sync.WaitGroup
		for i, c := range checks {
			wg.Go(func() {
				if err := probe(ctx, c); err != nil {
					failed[i] = fmt.Errorf("%s: %w", c.Name, err)
				}
			})
		}
		wg.Wait()
		if err := errors.Join(failed...); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	return mux
}

// probe runs c, giving up when ctx ends even if c's Probe ignores it.
func probe(ctx context.Context, c Check) error {
	done := make(chan error, 1)
	go func() { done <- c.Probe(ctx) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("no answer within %s", probeTimeout)
	}
}

// Serve listens on addr and serves h until ctx is cancelled, then shuts down,
// giving in-flight requests up to 5 s. It returns an error only when the
// listener cannot be opened or fails.
func Serve(ctx context.Context, addr string, h http.Handler, log zerolog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on --http-addr %s: %w", addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	log.Info().Str("addr", ln.Addr().String()).Msg("http listening")
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve http on %s: %w", addr, err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shut down http: %w", err)
	}
	return nil
}
