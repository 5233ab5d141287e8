package action

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/metricpipe/metricpipe/shared/retry"
	"github.com/metricpipe/metricpipe/shared/rules"
)

// SignatureHeader carries "sha256=" and the hex HMAC-SHA256 of the request
// body under the webhook's secret, for the receiver to check.
const SignatureHeader = "X-Metricpipe-Signature"

// Sign returns the SignatureHeader value of body under secret.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// webhook POSTs the event's JSON, retrying 5xx and network errors (each
// attempt audited), never 4xx.
func (x *Executor) webhook(ctx context.Context, j *job, rec Record) {
	w := j.action.Webhook
	body, err := json.Marshal(&j.event)
	var header http.Header
	if err == nil {
		header, err = webhookHeader(w, body)
	}
	if err != nil { // the configuration, not the receiver: no attempt
		rec.Outcome, rec.Error = Failed, err.Error()
		x.audit(rec)
		return
	}
	for attempt := 1; ; attempt++ {
		start := time.Now()
		status, err := post(ctx, x.client, w, header, body)
		r := rec
		r.Attempt, r.Status, r.Duration = attempt, status, time.Since(start).Seconds()
		if err == nil {
			r.Outcome = OK
			x.audit(r)
			return
		}
		r.Outcome, r.Error = Failed, err.Error()
		r.Retrying = attempt <= w.Retries && !retry.IsPermanent(err) && ctx.Err() == nil
		x.audit(r)
		if !r.Retrying || retry.Sleep(ctx, x.cfg.Backoff.Delay(attempt-1)) != nil {
			return
		}
	}
}

// webhookHeader reads the secrets, at each run so that a rotated secret
// takes effect without a reload.
func webhookHeader(w *rules.Webhook, body []byte) (http.Header, error) {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", "metricpipe-analyzer")
	for k, v := range w.Headers {
		h.Set(k, v)
	}
	for k, env := range w.HeadersEnv {
		v, ok := os.LookupEnv(env)
		if !ok {
			return nil, fmt.Errorf("header %s: environment variable %s is not set", k, env)
		}
		h.Set(k, v)
	}
	var secret []byte
	switch {
	case w.SecretEnv != "":
		v, ok := os.LookupEnv(w.SecretEnv)
		if !ok || v == "" {
			return nil, fmt.Errorf("secret: environment variable %s is not set", w.SecretEnv)
		}
		secret = []byte(v)
	case w.SecretFile != "":
		b, err := os.ReadFile(w.SecretFile)
		if err != nil {
			return nil, fmt.Errorf("secret: %w", err)
		}
		secret = bytes.TrimRight(b, "\r\n")
	}
	if secret != nil {
		h.Set(SignatureHeader, Sign(secret, body))
	}
	return h, nil
}

// post makes one attempt; its error is retry.Permanent for a 4xx.
func post(ctx context.Context, client *http.Client, w *rules.Webhook, header http.Header, body []byte) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, w.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return 0, retry.Permanent(err)
	}
	req.Header = header.Clone()
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	// Read a little, so the connection can be reused, and quote it.
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	switch {
	case resp.StatusCode < 300:
		return resp.StatusCode, nil
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusRequestTimeout:
		return resp.StatusCode, fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(msg)))
	default:
		return resp.StatusCode, retry.Permanent(fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(msg))))
	}
}

// maxOutput bounds the program output kept for the audit.
const maxOutput = 4 << 10

// exec runs the program without a shell, killed after its timeout.
func (x *Executor) exec(ctx context.Context, j *job, rec Record) {
	e := j.action.Exec
	rec.Attempt = 1
	args, err := e.RenderArgs(&j.event)
	if err == nil && e.Path == "" {
		err = errors.New("command not resolved in --actions-dir")
	}
	if err != nil {
		rec.Outcome, rec.Error = Failed, err.Error()
		x.audit(rec)
		return
	}
	rec.Args = args
	ctx, cancel := context.WithTimeout(ctx, e.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.Path, args...)
	cmd.Env = append(os.Environ(),
		"METRICPIPE_ALERT_RULE="+j.rule, "METRICPIPE_ALERT_FINGERPRINT="+j.event.Fingerprint,
		"METRICPIPE_ALERT_STATE="+string(j.event.State), "METRICPIPE_ALERT_SERIES="+j.event.Series)
	var out capped
	cmd.Stdout, cmd.Stderr = &out, &out
	// A child that keeps the output pipe open must not hold the worker
	// after the program was killed.
	cmd.WaitDelay = time.Second
	start := time.Now()
	err = cmd.Run()
	rec.Duration, rec.Output = time.Since(start).Seconds(), out.b.String()
	code := -1
	if cmd.ProcessState != nil {
		code = cmd.ProcessState.ExitCode()
	}
	rec.ExitCode = &code
	switch {
	case err == nil:
		rec.Outcome = OK
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		rec.Outcome, rec.Error = Failed, fmt.Sprintf("killed after the timeout %s", e.Timeout)
	default:
		rec.Outcome, rec.Error = Failed, err.Error()
	}
	x.audit(rec)
}

// capped keeps the first maxOutput bytes written to it.
type capped struct{ b bytes.Buffer }

func (c *capped) Write(p []byte) (int, error) {
	if room := maxOutput - c.b.Len(); room > 0 {
		c.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}
