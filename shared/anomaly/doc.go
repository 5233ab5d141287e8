// Package anomaly scores how surprising each point of a series is, given
// the forecast made for it: a residual z-score against a robust, adaptive
// scale, and a score in [0,1] derived from it.
package anomaly
