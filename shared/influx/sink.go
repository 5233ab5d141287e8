package influx

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"
	"unsafe"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"
	"github.com/influxdata/influxdb-client-go/v2/api"
	ihttp "github.com/influxdata/influxdb-client-go/v2/api/http"

	"github.com/metricpipe/metricpipe/shared/point"
)

// WriteError is a failed write, classified so callers can decide between
// retrying (timeouts, 5xx, 429) and giving up on the points (other 4xx, such
// as a field type conflict).
type WriteError struct {
	Status    int // HTTP status; 0 when no response arrived
	Retryable bool
	Err       error
}

func (e *WriteError) Error() string {
	if e.Status == 0 {
		return fmt.Sprintf("influxdb write: %v", e.Err)
	}
	return fmt.Sprintf("influxdb write: HTTP %d: %v", e.Status, e.Err)
}

func (e *WriteError) Unwrap() error { return e.Err }

// IsRetryable reports whether err is worth retrying: a WriteError marked so,
// or any error that is not a WriteError (network failures surface as those).
func IsRetryable(err error) bool {
	var we *WriteError
	if errors.As(err, &we) {
		return we.Retryable
	}
	return !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
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
	var he *ihttp.Error
	if !errors.As(err, &he) || he.StatusCode == 0 {
		return &WriteError{Retryable: true, Err: err}
	}
	retry := he.StatusCode == http.StatusTooManyRequests || he.StatusCode >= 500
	return &WriteError{Status: he.StatusCode, Retryable: retry, Err: err}
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
