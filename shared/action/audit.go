package action

import (
	"context"
	"math"
	"net/url"
	"time"

	"github.com/rs/zerolog"
)

// Outcome is how an action attempt ended.
type Outcome string

// The outcomes of the audit and of metricpipe_actions_total.
const (
	OK              Outcome = "ok"
	Failed          Outcome = "failed"
	SkippedCooldown Outcome = "skipped_cooldown"
	SkippedRate     Outcome = "skipped_rate"
	Dropped         Outcome = "dropped"
	DryRun          Outcome = "dry_run"
)

// Record is one audit event: an attempt of an action, or why it did not
// run. Its JSON is what the actions topic carries, keyed by fingerprint.
type Record struct {
	Time        time.Time `json:"time"`
	Rule        string    `json:"rule"`
	Fingerprint string    `json:"fingerprint"`
	// On is the alert state that called for the action; StartsAt the
	// alert's, identifying the event with Fingerprint.
	On       string    `json:"on"`
	StartsAt time.Time `json:"starts_at"`
	// Kind is webhook or exec; Target the webhook URL's host or the
	// command's name.
	Kind    string  `json:"kind"`
	Target  string  `json:"target"`
	Outcome Outcome `json:"outcome"`
	// Attempt counts a webhook's attempts from 1 (exec: 1); 0 when nothing
	// was attempted. Retrying says a failed attempt will be retried: only
	// the last attempt's outcome is final.
	Attempt  int  `json:"attempt,omitempty"`
	Retrying bool `json:"retrying,omitempty"`
	// Status is the webhook's HTTP status; ExitCode the program's (-1 when
	// it was killed or did not start).
	Status   int    `json:"status,omitempty"`
	ExitCode *int   `json:"exit_code,omitempty"`
	Error    string `json:"error,omitempty"`
	// Duration is the attempt's, in seconds.
	Duration float64 `json:"duration_seconds"`
	// Args are an exec action's rendered arguments; Output the start of
	// what it wrote to stdout and stderr (at most 4 KiB).
	Args   []string `json:"args,omitempty"`
	Output string   `json:"output,omitempty"`
}

func (x *Executor) record(j *job) Record {
	r := Record{Rule: j.rule, Fingerprint: j.event.Fingerprint, On: string(j.action.On), StartsAt: j.event.StartsAt,
		Kind: j.action.Kind()}
	if w := j.action.Webhook; w != nil {
		if u, err := url.Parse(w.URL); err == nil {
			r.Target = u.Host
		}
	} else if j.action.Exec != nil {
		r.Target = j.action.Exec.Command
	}
	return r
}

// audit logs and counts rec and queues it for the publisher, without
// blocking: when the audit queue is full the record is only logged.
func (x *Executor) audit(rec Record) {
	rec.Time = x.now().UTC()
	if !rec.Retrying {
		x.metrics.total.WithLabelValues(rec.Rule, rec.Kind, string(rec.Outcome)).Inc()
	}
	var ev *zerolog.Event
	switch rec.Outcome {
	case Dropped:
		ev = x.dropLog.Warn()
	case Failed:
		ev = x.log.Warn()
	default:
		ev = x.log.Info()
	}
	ev = ev.Str("rule", rec.Rule).Str("fingerprint", rec.Fingerprint).Str("kind", rec.Kind).Str("target", rec.Target).
		Str("on", rec.On).Str("outcome", string(rec.Outcome)).Int("attempt", rec.Attempt).Float64("duration_seconds", rec.Duration)
	if rec.Status != 0 {
		ev = ev.Int("status", rec.Status)
	}
	if rec.ExitCode != nil {
		ev = ev.Int("exit_code", *rec.ExitCode)
	}
	if rec.Error != "" {
		ev = ev.Str("error", rec.Error)
	}
	if rec.Args != nil {
		ev = ev.Strs("args", rec.Args)
	}
	ev.Msg("action")
	if x.pub == nil {
		return
	}
	select {
	case x.audits <- rec:
	default:
		x.metrics.auditDropped.Inc()
	}
}

// publishAudits publishes queued audit records in batches until stop is
// closed (after the workers stopped), then what is still queued, with a
// short grace since ctx has ended by then.
func (x *Executor) publishAudits(ctx context.Context, stop <-chan struct{}) {
	if x.pub == nil {
		<-stop
		return
	}
	var batch []Record
	flush := func(ctx context.Context) {
		if len(batch) == 0 {
			return
		}
		if err := x.pub.Publish(ctx, batch); err != nil {
			x.metrics.auditDropped.Add(float64(len(batch)))
			x.log.Warn().Err(err).Int("records", len(batch)).Msg("audit publish failed; records only logged")
		}
		batch = batch[:0]
	}
	// take moves queued records into the batch, up to limit.
	take := func(limit int) {
		for len(batch) < limit {
			select {
			case r := <-x.audits:
				batch = append(batch, r)
			default:
				return
			}
		}
	}
	for {
		select {
		case <-stop:
			// Give what the workers audited last a moment to reach the
			// topic.
			grace, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			take(math.MaxInt)
			flush(grace)
			return
		case r := <-x.audits:
			batch = append(batch[:0], r)
			take(100)
			flush(ctx)
		}
	}
}
