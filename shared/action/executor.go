// Package action runs the recovery actions of alert rules (webhooks and
// allow-listed programs, see shared/rules) when their alerts fire or
// resolve, off the stream's path: a bounded queue feeds a fixed pool of
// workers, so a slow or failing action never holds up the analyzer, and
// every attempt and outcome is audited.
//
// Delivery is at least once per process for a (rule, action, fingerprint,
// state, StartsAt): an event handed over twice (a batch retried after a
// partial failure, a re-announced firing alert) runs its actions once, but
// the memory of what ran is bounded and not checkpointed, so a restart or
// an eviction may run an action again. Actions must be idempotent:
// restarting a deployment twice is harmless, paging twice is noise.
package action

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/metricpipe/metricpipe/shared/alert"
	"github.com/metricpipe/metricpipe/shared/retry"
	"github.com/metricpipe/metricpipe/shared/rules"
)

// Config sizes the executor.
type Config struct {
	// Workers run actions concurrently (--actions-workers).
	Workers int
	// Queue bounds the actions waiting for a worker (--actions-queue); an
	// action that finds it full is dropped, audited and counted.
	Queue int
	// Backoff spaces a webhook's retries.
	Backoff retry.Backoff
	// Tracked bounds the alerts remembered for cooldowns and for running
	// an event's actions once.
	Tracked int
}

// DefaultConfig returns the defaults: 4 workers, a queue of 1000, retries
// from 1s doubling to 30s, 100000 alerts tracked.
func DefaultConfig() Config {
	return Config{Workers: 4, Queue: 1000, Backoff: retry.Backoff{Initial: time.Second, Max: 30 * time.Second}, Tracked: 100000}
}

// Validate reports every invalid setting, naming its flag.
func (c Config) Validate() error {
	var errs []error
	if c.Workers < 1 || c.Workers > 256 {
		errs = append(errs, fmt.Errorf("--actions-workers %d: want 1 to 256", c.Workers))
	}
	if c.Queue < 1 {
		errs = append(errs, fmt.Errorf("--actions-queue %d: want ≥ 1", c.Queue))
	}
	if err := c.Backoff.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("actions retry: %w", err))
	}
	if c.Tracked < 1 {
		errs = append(errs, fmt.Errorf("actions tracked %d: want ≥ 1", c.Tracked))
	}
	return errors.Join(errs...)
}

// Publisher publishes audit records (to the actions topic). Publish may
// block; the executor calls it from one goroutine of its own.
type Publisher interface {
	Publish(ctx context.Context, recs []Record) error
}

// Executor runs rules' actions for alert events. Submit is safe for
// concurrent use and never blocks; Run runs the workers.
type Executor struct {
	cfg     Config
	log     zerolog.Logger
	dropLog zerolog.Logger // sampled: a full queue drops many at once
	pub     Publisher      // nil: audit records are only logged and counted
	now     func() time.Time
	client  *http.Client
	queue   chan job
	audits  chan Record
	metrics metrics

	mu       sync.Mutex
	seen     map[string]struct{} // events whose actions were queued: dedup
	seenRing []string            // seen's keys, oldest first, for eviction
	until    map[string]time.Time
	buckets  map[string]*bucket
}

type job struct {
	rule   string
	index  int // of the action in the rule's list
	action rules.Action
	event  alert.Event
}

type metrics struct {
	total        *prometheus.CounterVec
	auditDropped prometheus.Counter
}

// New returns an executor; nothing runs until Run. pub may be nil.
func New(cfg Config, log zerolog.Logger, reg prometheus.Registerer, pub Publisher) (*Executor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	x := &Executor{
		cfg: cfg, log: log, pub: pub, now: time.Now,
		// No redirects: the signed body and the headers (a token) go to
		// the URL in the rule file and nowhere else; a 3xx is a failure.
		client:  &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		dropLog: log.Sample(&zerolog.BurstSampler{Burst: 5, Period: time.Second}),
		queue:   make(chan job, cfg.Queue),
		// Audit records outnumber actions (attempts, skips): room for a
		// few each before the publisher must keep up.
		audits:  make(chan Record, 4*cfg.Queue),
		seen:    make(map[string]struct{}),
		until:   make(map[string]time.Time),
		buckets: make(map[string]*bucket),
	}
	x.metrics = metrics{
		total: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "metricpipe_actions_total",
			Help: "Recovery actions by rule, kind (webhook, exec) and final outcome (ok, failed, skipped_cooldown, skipped_rate, dropped, dry_run)."},
			[]string{"rule", "kind", "outcome"}),
		auditDropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "metricpipe_actions_audit_dropped_total",
			Help: "Audit records not published because the audit queue was full (they are still logged)."}),
	}
	reg.MustRegister(x.metrics.total, x.metrics.auditDropped,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "metricpipe_actions_queued", Help: "Actions waiting for a worker."},
			func() float64 { return float64(len(x.queue)) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "metricpipe_actions_queue_capacity", Help: "--actions-queue."},
			func() float64 { return float64(cap(x.queue)) }))
	return x, nil
}

// Queued returns how many actions wait for a worker.
func (x *Executor) Queued() int { return len(x.queue) }

// Submit queues the actions of set's rules that the events call for: those
// whose On is the event's state. It copies what it keeps of events, which
// the caller may reuse at once. An event already submitted (same rule,
// fingerprint, state and StartsAt) is ignored; an action that finds the
// queue full is dropped and audited as such. Submit never blocks.
func (x *Executor) Submit(set *rules.Set, events []alert.Event) {
	if set == nil {
		return
	}
	for i := range events {
		ev := &events[i]
		r := ruleNamed(set, ev.Rule)
		if r == nil {
			continue
		}
		for k := range r.Actions {
			a := &r.Actions[k]
			if a.On != ev.State || !x.firstTime(r.Name, k, ev) {
				continue
			}
			j := job{rule: r.Name, index: k, action: *a, event: *ev}
			j.event.Labels = cloneLabels(ev.Labels)
			select {
			case x.queue <- j:
			default:
				rec := x.record(&j)
				rec.Outcome, rec.Error = Dropped, "queue full (--actions-queue "+strconv.Itoa(cap(x.queue))+")"
				x.audit(rec)
			}
		}
	}
}

func ruleNamed(set *rules.Set, name string) *rules.Rule {
	for _, r := range set.Rules {
		if r.Name == name && len(r.Actions) > 0 {
			return r
		}
	}
	return nil
}

func cloneLabels(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// firstTime records that the event's action k was submitted and reports
// whether it was not before (within the last Tracked submissions).
func (x *Executor) firstTime(rule string, k int, ev *alert.Event) bool {
	key := rule + "\x00" + strconv.Itoa(k) + "\x00" + ev.Fingerprint + "\x00" + string(ev.State) + "\x00" + strconv.FormatInt(ev.StartsAt.UnixNano(), 10)
	x.mu.Lock()
	defer x.mu.Unlock()
	if _, ok := x.seen[key]; ok {
		return false
	}
	if len(x.seenRing) >= x.cfg.Tracked {
		delete(x.seen, x.seenRing[0])
		x.seenRing = x.seenRing[1:]
	}
	x.seen[key] = struct{}{}
	x.seenRing = append(x.seenRing, key)
	return true
}

// Run runs the workers and the audit publisher until ctx ends. Actions
// running then are cancelled (a program is killed) and audited as failed;
// those still queued are audited as dropped. Run returns nil.
func (x *Executor) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for range x.cfg.Workers {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case j := <-x.queue:
					x.run(ctx, &j)
				}
			}
		})
	}
	stop, auditDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(auditDone)
		x.publishAudits(ctx, stop)
	}()
	wg.Wait()
	for {
		select {
		case j := <-x.queue:
			rec := x.record(&j)
			rec.Outcome, rec.Error = Dropped, "shutting down"
			x.audit(rec)
			continue
		default:
		}
		break
	}
	close(stop)
	<-auditDone
	return nil
}

// run runs one action: cooldown and rate limit first, then dry run or the
// real thing.
func (x *Executor) run(ctx context.Context, j *job) {
	rec := x.record(j)
	if outcome := x.admit(j); outcome != "" {
		rec.Outcome = outcome
		x.audit(rec)
		return
	}
	if j.action.DryRun {
		rec.Outcome = DryRun
		if e := j.action.Exec; e != nil {
			rec.Args, _ = e.RenderArgs(&j.event)
		}
		x.audit(rec)
		return
	}
	if j.action.Webhook != nil {
		x.webhook(ctx, j, rec)
	} else {
		x.exec(ctx, j, rec)
	}
}

// admit enforces the action's cooldown (per alert) and rate limit (per rule
// and action), in that order so that a cooled-down alert spends no token.
// It returns the skip outcome, or "" when the action may run; a run starts
// the alert's cooldown.
func (x *Executor) admit(j *job) Outcome {
	a := &j.action
	now := x.now()
	ck := j.rule + "\x00" + strconv.Itoa(j.index) + "\x00" + j.event.Fingerprint
	x.mu.Lock()
	defer x.mu.Unlock()
	if a.Cooldown > 0 && now.Before(x.until[ck]) {
		return SkippedCooldown
	}
	if a.RateLimit.N > 0 {
		bk := j.rule + "\x00" + strconv.Itoa(j.index)
		b := x.buckets[bk]
		if b == nil || b.rate != a.RateLimit { // new, or changed by a reload
			b = &bucket{rate: a.RateLimit, tokens: float64(a.RateLimit.N), at: now}
			x.buckets[bk] = b
		}
		if !b.take(now) {
			return SkippedRate
		}
	}
	if a.Cooldown > 0 {
		if len(x.until) >= x.cfg.Tracked {
			for k, t := range x.until {
				if !now.Before(t) {
					delete(x.until, k)
				}
			}
		}
		x.until[ck] = now.Add(a.Cooldown)
	}
	return ""
}

// bucket is a token bucket of rate.N tokens refilled at rate.N per rate.Per.
type bucket struct {
	rate   rules.Rate
	tokens float64
	at     time.Time
}

func (b *bucket) take(now time.Time) bool {
	if d := now.Sub(b.at); d > 0 {
		b.tokens = min(float64(b.rate.N), b.tokens+float64(b.rate.N)*d.Seconds()/b.rate.Per.Seconds())
		b.at = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
