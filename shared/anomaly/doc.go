// Package anomaly judges, point by point, how surprising a series is: a
// [Detector] per series forecasts each point before it arrives and
// returns a [Verdict] with two measures of the surprise.
//
//   - Z, the residual z-score |y − ŷ|/σ of the point, with σ a robust,
//     adaptive scale of the forecast's residuals floored at the series'
//     typical step and at the resolution of its values (so that
//     noise-free, quantized or flat series do not turn rounding errors
//     into alarms). Given event times (ObserveAt), a point k mean steps
//     after the one before is judged in a scale √k as wide: its forecast
//     is k steps ahead, and after a gap a series may have wandered as far
//     as a random walk would. It is high on every surprising point;
//     alert rules `anomaly: {z: k}` use it.
//   - Score in [0, 1], non-zero only at the onset of an unusual episode:
//     the point's z on a log scale of its normal tail probability (see
//     [Score]), or, when the series has recently had more than one onset
//     at least as large, no more than the surprise of one more at their
//     rate (see Verdict.Score): a series' habitual bursts stop paging
//     after about eight of them. Alert rules `anomaly: {score: s}` use it,
//     and so does the NAB evaluation (`analyzer eval`), which rewards the
//     first detection of each anomaly and charges every false one.
//
// # Warm-up
//
// A series is Warm after Config.WarmUp residuals and, given event times
// (ObserveAt), if its sampling makes a day one of its seasons (5-minute
// points, not 1-minute ones), two days after its first point: one to learn
// the day's pattern, one to be judged against it.
//
// # Forecasts
//
// The Detector runs two forecasts and judges with the one whose recent
// mean square error is lower (by a margin, so that it does not flap): the
// forecaster it is given (package forecast: Holt, AR, Holt-Winters or
// Auto), and its own seasonal forecast, which needs no configuration: it
// tries a day and a week at the usual sampling steps (24, 48, 96, 144,
// 168, 288 and 336 points), keeps the best, then smooths that season's
// profile over seasons. The seasonal forecast is used only while it also
// beats its own level without the season, so that a series with no
// pattern (flat, say) never uses it: it would replay each level shift a
// "season" later.
//
// # Cost
//
// A Detector is one allocation of 896 bytes plus its forecaster (768
// bytes for the default Auto): 1,664 bytes per series. Observe is O(1)
// (every 336 points it rescans its 336-point history, O(336)) and does
// not allocate; see BenchmarkObserve and TestMemoryPerSeries.
package anomaly
