package main

import (
	"compress/gzip"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"

	"github.com/metricpipe/metricpipe/shared/point"
	"github.com/metricpipe/metricpipe/shared/service"
)

// writeConfig configures the InfluxDB-compatible write endpoint of
// `producer http`.
type writeConfig struct {
	Listen       string
	Token        service.Secret // empty: no authentication
	MaxBodyBytes int            // after gzip decompression too
	MaxPoints    int            // per request; 0: no limit
	// MaxInflightBytes bounds the memory all requests in flight hold
	// together; 0: defaultMaxInflightBytes.
	MaxInflightBytes int64
}

// defaultMaxBodyBytes matches InfluxDB's own default write limit
// (max-body-size, 25 MB), so clients batch the same way as for InfluxDB.
const defaultMaxBodyBytes = 25 << 20

// defaultMaxInflightBytes leaves room in the producer's 256 Mi pod for the
// Kafka client's buffer (--buffer points, some 40 MB at the default) and
// for the garbage collector, which lets the heap grow to twice what is
// live: eight large requests at once (see requestReserve).
const defaultMaxInflightBytes = 64 << 20

// minInflightBytes keeps the longest line a request may send (an eighth of
// its share, see plan) at 128 KiB or more.
const minInflightBytes = 1 << 20

// defaultMaxPoints bounds the time a request holds its share of the budget
// (a million points take about a second to decode and send) rather than
// its memory, which the chunks bound. A 25 MB body of Telegraf's lines
// holds some 200,000 points; only bodies of tiny lines reach it.
const defaultMaxPoints = 1_000_000

func (c writeConfig) withDefaults() writeConfig {
	if c.MaxInflightBytes == 0 {
		c.MaxInflightBytes = defaultMaxInflightBytes
	}
	return c
}

func (c writeConfig) Validate() error {
	var errs []error
	if c.Listen == "" {
		errs = append(errs, errors.New("--listen is empty"))
	} else if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		errs = append(errs, fmt.Errorf("--listen %q: %w", c.Listen, err))
	}
	if c.MaxBodyBytes < 1 {
		errs = append(errs, fmt.Errorf("--max-body-bytes %d: want ≥ 1", c.MaxBodyBytes))
	}
	if c.MaxPoints < 0 {
		errs = append(errs, fmt.Errorf("--max-points-per-request %d: want ≥ 0", c.MaxPoints))
	}
	if c.MaxInflightBytes != 0 && c.MaxInflightBytes < minInflightBytes {
		errs = append(errs, fmt.Errorf("--max-inflight-bytes %d: want ≥ %d", c.MaxInflightBytes, minInflightBytes))
	}
	return errors.Join(errs...)
}

func httpCommand(stderr io.Writer) *cli.Command {
	env := service.EnvVars
	flags := []cli.Flag{
		&cli.StringFlag{Name: "listen", Value: "127.0.0.1:8186", Usage: "address of the write endpoint (/api/v2/write, /write, /ping, /health)", EnvVars: env("listen")},
		&cli.StringFlag{Name: "token", Usage: "token writers must present (Authorization: Token|Bearer, or /write's p= or basic-auth password); empty: no authentication", EnvVars: env("token")},
		&cli.StringFlag{Name: "token-file", Usage: "file holding --token", EnvVars: env("token-file")},
		&cli.IntFlag{Name: "max-body-bytes", Value: defaultMaxBodyBytes, Usage: "largest request body, also after gzip decompression", EnvVars: env("max-body-bytes")},
		&cli.IntFlag{Name: "max-points-per-request", Value: defaultMaxPoints, Usage: "most points in one request (0: no limit); checked as the body is decoded", EnvVars: env("max-points-per-request")},
		&cli.Int64Flag{Name: "max-inflight-bytes", Value: defaultMaxInflightBytes, Usage: "memory that requests in flight hold together (buffered text, decoded points); a request that does not fit is answered 429 with Retry-After. Each holds up to 8 MiB, less for a small uncompressed body", EnvVars: env("max-inflight-bytes")},
	}
	return &cli.Command{
		Name:  "http",
		Usage: "accept InfluxDB line-protocol writes over HTTP (/api/v2/write, /write), answering only after Kafka acknowledged them",
		Flags: append(flags, deliveryFlags()...),
		Action: func(c *cli.Context) error {
			d, derr := deliveryConfigFromCLI(c)
			token, terr := service.LoadSecret("token", c.String("token"), c.String("token-file"))
			wc := writeConfig{
				Listen:           c.String("listen"),
				Token:            token,
				MaxBodyBytes:     c.Int("max-body-bytes"),
				MaxPoints:        c.Int("max-points-per-request"),
				MaxInflightBytes: c.Int64("max-inflight-bytes"),
			}
			if err := errors.Join(derr, terr, d.Validate(), wc.Validate()); err != nil {
				return err
			}
			log := service.NewLogger(stderr, d.Service, "producer")
			return runSource(c.Context, d, log, "http", func(ctx context.Context, out sink, reg *prometheus.Registry, ready func(context.Context) error) error {
				h, err := newWriteHandler(wc, out, ready, log, reg)
				if err != nil {
					return err
				}
				ln, err := net.Listen("tcp", wc.Listen)
				if err != nil {
					return fmt.Errorf("listen on --listen %s: %w", wc.Listen, err)
				}
				warnUnauthenticated(log, ln.Addr(), wc.Token)
				return serveWrites(ctx, ln, h, log)
			})
		},
	}
}

// warnUnauthenticated warns when the write endpoint listens on addr, which
// other hosts can reach, without a token: anyone who can connect can write.
func warnUnauthenticated(log zerolog.Logger, addr net.Addr, token service.Secret) {
	if ta, ok := addr.(*net.TCPAddr); token.Reveal() != "" || (ok && ta.IP.IsLoopback()) {
		return
	}
	log.Warn().Str("addr", addr.String()).Msg("write endpoint listens beyond loopback without --token: anyone who can connect can write points")
}

// shutdownGrace bounds how long in-flight writes (each waiting for Kafka's
// acknowledgement) may take to finish after a stop; it is below
// drainTimeout so that the producer's own drain still follows.
const shutdownGrace = 20 * time.Second

// serveWrites serves h on ln until ctx ends, then stops accepting and lets
// in-flight requests finish (up to shutdownGrace) before returning. It owns
// ln and closes it.
func serveWrites(ctx context.Context, ln net.Listener, h http.Handler, log zerolog.Logger) error {
	// Requests are not cancelled with ctx: a write in flight at a stop
	// completes and is answered truthfully. Only a shutdown past its grace
	// cancels them.
	reqCtx, cancelRequests := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelRequests()
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		// A 25 MiB body over a slow link still fits; an idle or stuck
		// client does not hold a connection forever.
		ReadTimeout: time.Minute,
		IdleTimeout: 2 * time.Minute,
		// No WriteTimeout: the answer waits for Kafka's acknowledgement,
		// which the producer's own timeouts bound.
		BaseContext: func(net.Listener) context.Context { return reqCtx },
	}
	log.Info().Str("addr", ln.Addr().String()).Msg("write endpoint listening")
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve writes on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		cancelRequests()
		srv.Close()
		return fmt.Errorf("shut down write endpoint: %w", err)
	}
	return nil
}

// writeHandler serves the InfluxDB-compatible write API. It is safe for
// concurrent use.
type writeHandler struct {
	cfg    writeConfig
	out    sink
	ready  *readyCache
	log    zerolog.Logger   // sampled: bad requests can come at any rate
	budget *byteBudget      // MaxInflightBytes
	now    func() time.Time // receive time of points without a timestamp

	requests *prometheus.CounterVec
	points   prometheus.Counter
	seconds  prometheus.Histogram
}

// newWriteHandler validates cfg and returns the handler writing to out.
// ready reports whether Kafka is reachable; its result is reused for
// readyTTL. The handler's metrics are registered on reg.
func newWriteHandler(cfg writeConfig, out sink, ready func(context.Context) error, log zerolog.Logger, reg prometheus.Registerer) (*writeHandler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	h := &writeHandler{
		cfg:    cfg,
		out:    out,
		ready:  &readyCache{probe: ready, now: time.Now},
		log:    log.Sample(&zerolog.BurstSampler{Burst: 5, Period: time.Second}),
		budget: newByteBudget(cfg.MaxInflightBytes),
		now:    time.Now,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "metricpipe_producer_http_requests_total",
			Help: "HTTP requests to the write endpoint, by status code."}, []string{"code"}),
		points: prometheus.NewCounter(prometheus.CounterOpts{Name: "metricpipe_producer_http_points_total",
			Help: "Points received over HTTP and acknowledged by Kafka."}),
		seconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "metricpipe_producer_http_request_seconds",
			Help: "Time to answer a write-endpoint request, including Kafka's acknowledgement.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 15)}),
	}
	inflight := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "metricpipe_producer_http_inflight_bytes",
		Help: "Memory held by the write requests in flight, of --max-inflight-bytes."}, func() float64 { return float64(h.budget.inUse()) })
	for _, c := range []prometheus.Collector{h.requests, h.points, h.seconds, inflight} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register http write metrics: %w", err)
		}
	}
	return h, nil
}

// readyTTL is how long one Kafka probe answers for: a probe per write would
// double the requests to the brokers under load, while a second of staleness
// costs at most a retried write (Retry-After: 1).
const readyTTL = time.Second

// probeTimeout bounds one Kafka probe so that a hung broker turns into a
// 503 rather than a stalled client.
const probeTimeout = 3 * time.Second

// readyCache remembers the last probe's result for readyTTL. Concurrent
// callers during a probe wait for it rather than probing too.
type readyCache struct {
	probe func(context.Context) error
	now   func() time.Time

	mu      sync.Mutex
	checked time.Time
	err     error
}

func (c *readyCache) check(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t := c.now(); !c.checked.IsZero() && t.Sub(c.checked) < readyTTL {
		return c.err
	}
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	c.err = c.probe(ctx)
	c.checked = c.now()
	return c.err
}

// apiError is InfluxDB's error body, which its clients (Telegraf included)
// parse and log.
type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// InfluxDB's error codes, as its clients know them.
const (
	codeInvalid      = "invalid"
	codeUnauthorized = "unauthorized"
	codeTooLarge     = "request too large"
	codeUnavailable  = "unavailable"
	codeNotFound     = "not found"
	codeMethod       = "method not allowed"
	codeUnsupported  = "unsupported media type"
	codeTooMany      = "too many requests"
)

// statusError is a request failure with its HTTP status and InfluxDB code.
type statusError struct {
	status int
	code   string
	msg    string
}

func (e *statusError) Error() string { return e.msg }

func failf(status int, code, format string, args ...any) *statusError {
	return &statusError{status: status, code: code, msg: fmt.Sprintf(format, args...)}
}

// ServeHTTP routes: POST /api/v2/write and /write write points; GET and HEAD
// /ping answer 204; GET /health reports Kafka's reachability.
func (h *writeHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	began := time.Now()
	status := h.serve(w, r, h.now())
	h.requests.WithLabelValues(strconv.Itoa(status)).Inc()
	h.seconds.Observe(time.Since(began).Seconds())
}

// serve answers r and returns the status it sent.
func (h *writeHandler) serve(w http.ResponseWriter, r *http.Request, start time.Time) int {
	var v1 bool
	switch r.URL.Path {
	case "/api/v2/write":
	case "/write":
		v1 = true
	case "/ping":
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			return h.fail(w, r, failf(http.StatusMethodNotAllowed, codeMethod, "%s /ping: use GET or HEAD", r.Method), "GET, HEAD")
		}
		w.Header().Set("X-Influxdb-Version", "metricpipe")
		w.WriteHeader(http.StatusNoContent)
		return http.StatusNoContent
	case "/health":
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			return h.fail(w, r, failf(http.StatusMethodNotAllowed, codeMethod, "%s /health: use GET", r.Method), "GET, HEAD")
		}
		return h.health(w, r)
	default:
		return h.fail(w, r, failf(http.StatusNotFound, codeNotFound, "path %q not found", r.URL.Path), "")
	}
	if r.Method != http.MethodPost {
		return h.fail(w, r, failf(http.StatusMethodNotAllowed, codeMethod, "%s %s: use POST", r.Method, r.URL.Path), "POST")
	}
	if err := h.write(w, r, v1, start); err != nil {
		return h.fail(w, r, err, "")
	}
	w.WriteHeader(http.StatusNoContent)
	return http.StatusNoContent
}

func (h *writeHandler) health(w http.ResponseWriter, r *http.Request) int {
	status, body := http.StatusOK, map[string]string{"name": "metricpipe-producer", "status": "pass"}
	if err := h.ready.check(r.Context()); err != nil {
		status, body["status"], body["message"] = http.StatusServiceUnavailable, "fail", "kafka: "+err.Error()
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(body) //nolint:errcheck // the client may be gone; nothing to do
	return status
}

// write decodes r's body a chunk at a time, sends each chunk's points to
// Kafka before it decodes the next, and returns nil once Kafka acknowledged
// them all. A failure after some chunks were acknowledged says which lines
// were written, as InfluxDB's partial writes do.
func (h *writeHandler) write(w http.ResponseWriter, r *http.Request, v1 bool, start time.Time) *statusError {
	if !h.authorized(r, v1) {
		return failf(http.StatusUnauthorized, codeUnauthorized, "unauthorized access")
	}
	scale, err := precisionScale(r.URL.Query().Get("precision"), v1)
	if err != nil {
		return err
	}
	limit := int64(h.cfg.MaxBodyBytes)
	if r.ContentLength > limit {
		return h.tooLarge()
	}
	gzipped, err := gzipEncoded(r)
	if err != nil {
		return err
	}
	p := h.plan(r.ContentLength, gzipped)
	if !h.budget.tryAcquire(p.reserve) {
		return failf(http.StatusTooManyRequests, codeTooMany, "the write requests in flight hold all of --max-inflight-bytes (%d bytes); retry later", h.cfg.MaxInflightBytes)
	}
	defer h.budget.release(p.reserve)
	// MaxBytesReader bounds the raw body (chunked ones included) and makes
	// the server close the connection after the 413.
	var body io.Reader = http.MaxBytesReader(w, r.Body, limit)
	if gzipped {
		zr, err := gzip.NewReader(body)
		if err != nil {
			return h.bodyError("gzip", err)
		}
		defer zr.Close()
		body = zr // bounded by the stream's limit: a gzip bomb stops at limit+1 bytes
	}
	s := newLineStream(body, limit, p.buf, p.bufMax, p.maxCost)
	received := start.UnixNano()
	written := 0
	for {
		pts, err := s.next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return partial(h.streamError(err, p.bufMax), written, s)
		}
		if h.cfg.MaxPoints > 0 && s.points > h.cfg.MaxPoints {
			return partial(failf(http.StatusRequestEntityTooLarge, codeTooLarge, "more than %d points, the limit per request", h.cfg.MaxPoints), written, s)
		}
		first := s.points - len(pts) // points before this chunk
		for i := range pts {
			t := pts[i].Time
			switch {
			case t == 0:
				pts[i].Time = received
			case t > math.MaxInt64/scale || t < math.MinInt64/scale:
				return partial(failf(http.StatusBadRequest, codeInvalid, "point %d: timestamp %d out of range for its precision", first+i+1, t), written, s)
			default:
				pts[i].Time = t * scale
			}
		}
		if written == 0 {
			if err := h.ready.check(r.Context()); err != nil {
				return failf(http.StatusServiceUnavailable, codeUnavailable, "kafka unavailable: %v", err)
			}
		}
		// SendBatch encodes the points before it returns, so the stream may
		// reuse their memory for the next chunk.
		if err := h.out.SendBatch(r.Context(), pts); err != nil {
			return partial(failf(http.StatusServiceUnavailable, codeUnavailable, "points not acknowledged by kafka: %v", err), written, s)
		}
		written += len(pts)
		h.points.Add(float64(len(pts)))
	}
}

// partial adds to err which lines were written before it, if any: the
// client learns what a retry would write twice.
func partial(err *statusError, written int, s *lineStream) *statusError {
	if written > 0 {
		err.msg += fmt.Sprintf("; partial write: the %d points on lines 1 to %d were written", written, s.linesBefore())
	}
	return err
}

// gzipEncoded reports whether r's body is gzipped, or a 415 for an encoding
// other than gzip or none.
func gzipEncoded(r *http.Request) (bool, *statusError) {
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
		return false, nil
	case "gzip":
		return true, nil
	default:
		return false, failf(http.StatusUnsupportedMediaType, codeUnsupported, "Content-Encoding %q: want gzip or none", enc)
	}
}

func (h *writeHandler) tooLarge() *statusError {
	return failf(http.StatusRequestEntityTooLarge, codeTooLarge, "request body exceeds the limit of %d bytes", h.cfg.MaxBodyBytes)
}

// streamError maps an error of lineStream.next: a parse error is a 400 that
// locates it, a body or line over its limit (bufMax bytes) a 413.
func (h *writeHandler) streamError(err error, bufMax int) *statusError {
	var de *point.DecodeError
	switch {
	case errors.As(err, &de):
		return failf(http.StatusBadRequest, codeInvalid, "%s", de.Error())
	case errors.Is(err, errBodyTooLarge):
		return h.tooLarge()
	case errors.Is(err, errLineTooLarge):
		return failf(http.StatusRequestEntityTooLarge, codeTooLarge, "%v: over %d bytes, or too many tags and fields to decode in one piece", err, bufMax)
	}
	return h.bodyError("read body", err)
}

// precisionScale returns the nanoseconds in one unit of precision p; v1
// allows InfluxDB 1's extra spellings.
func precisionScale(p string, v1 bool) (int64, *statusError) {
	switch p {
	case "", "ns":
		return 1, nil
	case "us":
		return int64(time.Microsecond), nil
	case "ms":
		return int64(time.Millisecond), nil
	case "s":
		return int64(time.Second), nil
	}
	if v1 {
		switch p {
		case "n":
			return 1, nil
		case "u":
			return int64(time.Microsecond), nil
		case "m":
			return int64(time.Minute), nil
		case "h":
			return int64(time.Hour), nil
		}
		return 0, failf(http.StatusBadRequest, codeInvalid, "precision %q: want n, ns, u, us, ms, s, m or h", p)
	}
	return 0, failf(http.StatusBadRequest, codeInvalid, "precision %q: want ns, us, ms or s", p)
}

// authorized reports whether r carries the token, or no token is needed.
func (h *writeHandler) authorized(r *http.Request, v1 bool) bool {
	want := h.cfg.Token.Reveal()
	if want == "" {
		return true
	}
	var got string
	if a := r.Header.Get("Authorization"); a != "" {
		scheme, cred, _ := strings.Cut(a, " ")
		switch {
		case strings.EqualFold(scheme, "Token"), strings.EqualFold(scheme, "Bearer"):
			got = strings.TrimSpace(cred)
		case v1 && strings.EqualFold(scheme, "Basic"):
			_, got, _ = r.BasicAuth()
		}
	} else if v1 {
		got = r.URL.Query().Get("p")
	}
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// bodyError maps a failure to read or gunzip the body: the raw body over
// the limit is a 413, anything else (a broken gzip stream, a client that
// went away) a 400.
func (h *writeHandler) bodyError(what string, err error) *statusError {
	if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
		return h.tooLarge()
	}
	return failf(http.StatusBadRequest, codeInvalid, "%s: %v", what, err)
}

// fail answers err as InfluxDB would and logs it, sampled. allow, when set,
// is the Allow header of a 405.
func (h *writeHandler) fail(w http.ResponseWriter, r *http.Request, err *statusError, allow string) int {
	if allow != "" {
		w.Header().Set("Allow", allow)
	}
	if err.status == http.StatusServiceUnavailable || err.status == http.StatusTooManyRequests {
		// Telegraf and the InfluxDB clients retry after this many seconds.
		w.Header().Set("Retry-After", "1")
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Influxdb-Error", err.msg)
	w.WriteHeader(err.status)
	if r.Method != http.MethodHead {
		json.NewEncoder(w).Encode(apiError{Code: err.code, Message: err.msg}) //nolint:errcheck // the client may be gone
	}
	ev := h.log.Warn()
	if err.status >= 500 {
		ev = h.log.Error()
	}
	ev.Str("path", r.URL.Path).Str("remote", r.RemoteAddr).Int("status", err.status).Str("error", err.msg).Msg("write request failed")
	return err.status
}
