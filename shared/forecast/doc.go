// Package forecast forecasts a series online, one point at a time, for the
// analyzer: a [Forecaster] per series predicts the next value before it
// arrives, with a prediction interval, from compact state updated in O(1)
// per point (O(p²) for AR(p)) without allocating.
//
// # Models
//
//   - [Holt]: level + trend (double exponential smoothing), for series that
//     drift. Ready after 2 points.
//   - [HoltWinters]: level + trend + an additive season of Season points.
//     Ready after two seasons, which give the initial trend and season.
//   - [AR]: ŷ(t) = Σ wᵢ·y(t−i) + c, fitted by recursive least squares with
//     forgetting factor λ on centred and scaled values; it learns mean
//     reversion, oscillation and (w = 2, −1) trends. Ready after Order
//     points.
//   - [Auto]: runs Holt, AR and, with a Season, Holt-Winters side by side
//     and predicts with the one whose exponentially weighted squared
//     one-step error (half-life ErrorHalfLife points) is lowest.
//
// Points are counted, not timed: the models assume evenly spaced points,
// and a missing value (a non-finite one passed to Update) steps them
// forward on their own forecast so that the seasonal phase stays aligned.
//
// # Intervals
//
// Every Forecaster tracks the exponentially weighted mean square of its own
// one-step residuals (of the model in use, for Auto); its root is
// [Forecaster.Sigma], and [Forecaster.Interval] widens it for h steps ahead
// by the factor each model's state-space form implies.
//
// # Cost
//
// A Forecaster is one allocation of 768 bytes whatever its kind (the AR
// state, sized for [MaxOrder], is most of it), plus 8·Season bytes for the
// season, allocated by [New]. Update plus Predict take about 10-15 ns for
// Holt and Holt-Winters, 60 ns for AR(3) and 70 ns for Auto (see
// BenchmarkUpdatePredict and BenchmarkMemoryPerSeries).
package forecast
