package influx

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
	"unsafe"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"
	"github.com/influxdata/influxdb-client-go/v2/api"
	ihttp "github.com/influxdata/influxdb-client-go/v2/api/http"

	"github.com/metricpipe/metricpipe/shared/point"
)

// Cause is why a write failed. It decides what the caller does: only
// Refused blames the points; every other cause is the sink's, and the
// points must wait for it, never be dead-lettered or committed past.
type Cause int

const (
	// Unavailable: no answer, a timeout or a 5xx. It passes by itself.
	Unavailable Cause = iota + 1
	// Throttled: 429. InfluxDB asks writers to slow down.
	Throttled
	// Misconfigured: 401, 403, 404 (no such bucket, database or org), 413.
	// An operator must act; until then writes wait.
	Misconfigured
	// Refused: 400 or 422. InfluxDB refused points as points: a line it
	// cannot parse, a field type conflict, a time outside the retention
	// policy. Retrying them cannot help.
	Refused
)

func (c Cause) String() string {
	switch c {
	case Unavailable:
		return "unavailable"
	case Throttled:
		return "throttled"
	case Misconfigured:
		return "misconfigured"
	case Refused:
		return "refused"
	}
	return "unknown"
}

// WriteError is a failed write request, classified by Cause.
type WriteError struct {
	Status int // HTTP status; 0 when no response arrived
	Cause  Cause
	Err    error
}

func (e *WriteError) Error() string {
	if e.Status == 0 {
		return fmt.Sprintf("influxdb write: %v", e.Err)
	}
	return fmt.Sprintf("influxdb write: HTTP %d: %v", e.Status, e.Err)
}

func (e *WriteError) Unwrap() error { return e.Err }

// CauseOf classifies err: the Cause of a *WriteError in its chain, else
// Unavailable (network failures surface as other errors).
func CauseOf(err error) Cause {
	if we, ok := errors.AsType[*WriteError](err); ok {
		return we.Cause
	}
	return Unavailable
}

// Sink writes points to one bucket. It is safe for concurrent use.
type Sink struct {
	cfg    Config
	client influxdb2.Client
	write  api.WriteAPIBlocking
	bufs   sync.Pool // *[]byte: a request's lines are hundreds of kilobytes, encoded again and again
}

// NewSink returns a sink for cfg. It does not contact the server; see Ping.
// The caller must Close it.
func NewSink(cfg Config) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	opts := influxdb2.DefaultOptions().
		SetHTTPRequestTimeout(uint(cfg.Timeout.Seconds())).
		SetPrecision(time.Nanosecond) // points carry ns timestamps
	client := influxdb2.NewClientWithOptions(cfg.URL, cfg.Token.Reveal(), opts)
	return &Sink{cfg: cfg, client: client, write: client.WriteAPIBlocking(cfg.Org, cfg.Bucket)}, nil
}

// Bucket returns the bucket written to.
func (s *Sink) Bucket() string { return s.cfg.Bucket }

// Write writes pts in requests of at most BatchSize points and returns when
// InfluxDB accepted all of them, or at the first failure as a *WriteError.
// A point with Time 0 would get the server's clock and break idempotent
// replays, so callers must set every point's time.
func (s *Sink) Write(ctx context.Context, pts []point.Point) error {
	bp, _ := s.bufs.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	defer s.bufs.Put(bp)
	for len(pts) > 0 {
		n := min(len(pts), s.cfg.BatchSize)
		*bp = point.AppendLines((*bp)[:0], pts[:n])
		if err := s.WriteLines(ctx, *bp, n); err != nil {
			return err
		}
		pts = pts[n:]
	}
	return nil
}

// WriteLines writes n points already encoded as line protocol in one
// request, for what the point model cannot carry (string fields). Errors
// are as for Write. The lines are only read during the call: the blocking
// write API sends them as the request body and keeps nothing.
func (s *Sink) WriteLines(ctx context.Context, lines []byte, n int) error {
	if err := s.write.WriteRecord(ctx, unsafe.String(unsafe.SliceData(lines), len(lines))); err != nil {
		return fmt.Errorf("write %d points to bucket %q: %w", n, s.cfg.Bucket, classify(err))
	}
	return nil
}

func classify(err error) *WriteError {
	he, ok := errors.AsType[*ihttp.Error](err)
	if !ok || he.StatusCode == 0 {
		return &WriteError{Cause: Unavailable, Err: err}
	}
	cause := causeOfStatus(he.StatusCode)
	// InfluxDB 2.x answers a write without an org with 400, which would
	// otherwise blame every point.
	if cause == Refused && strings.Contains(strings.ToLower(he.Message), "orgid or org") {
		cause = Misconfigured
	}
	return &WriteError{Status: he.StatusCode, Cause: cause, Err: err}
}

// causeOfStatus maps InfluxDB's answers, 1.8 and 2.x alike: 400 is a line
// it cannot parse or (1.8) a partial write, 422 (2.x) a field type
// conflict or a time outside retention; 401, 403 and 404 a token, a
// permission or a bucket that is wrong; 413 a batch too large for the
// server's limit. Any other status is taken as the server's trouble.
func causeOfStatus(status int) Cause {
	switch status {
	case http.StatusBadRequest, http.StatusUnprocessableEntity:
		return Refused
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound, http.StatusRequestEntityTooLarge:
		return Misconfigured
	case http.StatusTooManyRequests:
		return Throttled
	}
	return Unavailable
}

// Ping succeeds when the server answers: the readiness check for InfluxDB.
func (s *Sink) Ping(ctx context.Context) error {
	ok, err := s.client.Ping(ctx)
	if err != nil {
		return fmt.Errorf("ping influxdb at %s: %w", s.cfg.URL, err)
	}
	if !ok {
		return fmt.Errorf("ping influxdb at %s: not ready", s.cfg.URL)
	}
	return nil
}

// Close releases the client's connections.
func (s *Sink) Close() { s.client.Close() }
