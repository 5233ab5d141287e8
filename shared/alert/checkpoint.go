package alert

import "github.com/metricpipe/metricpipe/shared/stream"

// Checkpoint appends the lifecycle to e: its phase and its times, as
// varints (a lifecycle that never fired costs 6 bytes).
func (l *Lifecycle) Checkpoint(e *stream.Encoder) {
	e.Uvarint(uint64(l.state))
	e.Varint(l.activeAt)
	e.Varint(l.startsAt)
	e.Varint(l.clearedAt)
	e.Varint(l.endsAt)
	e.Varint(l.announced)
}

// Restore replaces the lifecycle with what Checkpoint wrote; an unknown
// phase fails d with an error wrapping stream.ErrCorrupt, leaving l
// inactive.
func (l *Lifecycle) Restore(d *stream.Decoder) {
	st := d.Uvarint()
	*l = Lifecycle{activeAt: d.Varint(), startsAt: d.Varint(), clearedAt: d.Varint(), endsAt: d.Varint(), announced: d.Varint()}
	if st > uint64(resolved) {
		d.Fail("alert phase %d", st)
	}
	if d.Err() != nil {
		*l = Lifecycle{}
		return
	}
	l.state = phase(st)
}

// Shift moves the clocks that time the lifecycle's next transitions, when
// it became pending, when its condition cleared while firing, when it was
// last announced, by d: a lifecycle stepped in processing time (an absence
// rule's) and restored after a downtime d long resumes as if the downtime
// had not been, so that it neither fires nor resolves for the downtime
// alone. StartsAt and EndsAt stay: they identify and describe the alert's
// events.
func (l *Lifecycle) Shift(d int64) {
	switch l.state {
	case pending:
		l.activeAt += d
	case firing:
		l.activeAt += d
		l.announced += d
		if l.clearedAt != 0 {
			l.clearedAt += d
		}
	}
}
