// Package movavg is metricpipe's moving-average stage: the consumer runs
// every point it writes to InfluxDB through it and writes the points it
// derives alongside. One [Stage] serves one Kafka partition worker and owns
// the state of that partition's series; it is not safe for concurrent use.
// It implements the stream.Stage contract: what it derives depends only on
// its state and on the points fed, in partition order, never on batching,
// on other series or on wall time; wall time only drives Expire.
//
// # What is computed
//
// A series-field is a measurement, a tag set and a field key; each tracked
// one has its own state. [Params] choose the computations per measurement
// ([Config.Default], replaced entirely by [Config.Overrides] for the
// measurements named there). For every point and every field f:
//
//   - SMA: the mean of f's last SMAWindow values. A running sum, recomputed
//     from the stored values whenever their ring buffer wraps, so that
//     rounding errors cannot accumulate (relative error about 2·N·ε however
//     long the stream).
//   - EMA: ema = (1−α)·ema + α·x, initialised with the first value.
//   - WMA: Σ aᵢ·x(t−i) over the weights a₀, a₁, …, a₀ weighting the newest
//     value. The sum is not divided by the sum of the weights: weights
//     summing to 1 give a weighted average, other weights give any linear
//     filter.
//
// Moving averages count points in arrival order (the partition's order),
// not in event time: a late point is simply the next point.
//
// Warm-up: there is no _sma before SMAWindow points of the series-field
// were seen, and no _wma before len(WMAWeights) points; _ema starts with the
// first point (equal to it). [Averages] are this state and arithmetic for
// one series-field, for the analyzer's rules.
//
// State survives restarts and rebalances through [Stage.Checkpoint] and
// [Stage.Restore]: a versioned record of every series (averages bit for
// bit, open windows with their P² markers, clocks) under a hash of the
// configuration it depends on; restored and fed the points that followed,
// a Stage continues exactly as an uninterrupted one. When no checkpoint
// can be used, [Stage.Warm] rebuilds the moving averages from the points
// before the resume position, or every series-field warms up again.
//
// # Rollups
//
// With Rollup = R, event time (Point.Time) is cut into tumbling windows
// [s, s+R) aligned to the Unix epoch (s is a multiple of R), and each
// series-field accumulates its points of each window: count, mean, min,
// max, last (the value with the latest event time; ties go to the last
// arrival) and p95.
//
// The p95 is estimated with the P² algorithm (Jain and Chlamtac, 1985): five
// markers per window, O(1) memory and time per point, within a fraction of
// a percent of the exact quantile on large windows, where the exact value
// would mean keeping every sample of every open window of every series. Up
// to five points the stored samples give the exact value, interpolated
// linearly between order statistics (Hyndman and Fan's type 7, as in NumPy).
//
// Event time is per series: each series (measurement and tag set) has its
// own clock, its watermark, the latest event time of its own points minus
// AllowedLateness. A window [s, s+R) of the series closes, and its rollup is
// emitted, when that watermark reaches s+R. A point whose window has already
// closed is counted in DroppedLate and left out of the rollups (its moving
// averages are still computed); a late point whose window is still open
// updates it. A series-field thus has at most AllowedLateness/R + 1 windows
// open. Other series play no part: a series whose times lie years behind
// the others of its partition (a backfill, a replay of old data) gets
// exactly the rollups it would get alone.
//
// Processing time (wall time) only drives housekeeping, in [Stage.Expire]:
// a series without a point for IdleFlush has the windows flushed (closed for
// good: its watermark moves to their end) that its clock, run on at
// wall-clock pace since its last point, would have closed; a series without
// a point for IdleTimeout is forgotten, its windows flushed first.
// [Stage.Flush] closes every window at once, for a partition gone quiet.
//
// # Output schema
//
// Everything is written into the source measurement and series (same tags),
// as float fields:
//
//   - Derived point, at most one per input point, at the input point's
//     time: <f>_sma, <f>_ema, <f>_wma for each field f of the point, those
//     enabled and warmed up only. In InfluxDB these fields join the source
//     point's fields at the same timestamp.
//   - Rollup point, one per series and closed window, at the window start
//     s: <f>_count, <f>_mean, <f>_min, <f>_max, <f>_last and <f>_p95 for
//     each field f of the series that had points in that window.
//
// For example, with Rollup 1m, the source point, its derived point and the
// rollup of the minute before:
//
//	cpu,host=a usage=0.7 1700000000000000000
//	cpu,host=a usage_sma=0.52,usage_ema=0.61,usage_wma=0.64 1700000000000000000
//	cpu,host=a usage_count=60,usage_mean=0.5,usage_min=0.1,usage_max=0.9,usage_last=0.7,usage_p95=0.88 1699999920000000000
//
// A value that overflows float64 (a sum of values near ±1.8e308) is left
// out, since line protocol cannot express ±Inf. Source fields whose keys end
// in these suffixes would collide with derived ones: avoid them.
//
// # Bounds and memory
//
// MaxSeries bounds the series-field states; points of further ones get no
// derived output ([Result].Untracked, [Stats].Untracked). Expire drops
// series idle for IdleTimeout of processing time. A tracked series-field
// costs about 0.9 KiB with SMAWindow 30 and rollups on, two windows
// open (see TestMemoryPerSeries). The points handed out are carved from memory the
// Stage reuses after [Stage.Reset], so that processing a point of a tracked
// series does not allocate.
package movavg
