package anomaly

import (
	"math"

	"github.com/metricpipe/metricpipe/shared/forecast"
)

// Detector is the streaming anomaly detector of one series: a forecaster
// predicts each point before it is seen, a Scorer judges the residual.
// The analyzer runs one per series-field; the NAB evaluation runs the same
// code offline. Not safe for concurrent use.
type Detector struct {
	fc      *forecast.Forecaster
	sc      Scorer
	outlier uint8 // consecutive points fed to the forecaster clipped
}

// maxClipped is how many outliers in a row are clipped before the
// forecaster takes the values as they are: one to three far-off points are
// spikes the forecast should ignore; more are a new level it must follow.
const maxClipped = 3

// NewDetector returns a detector forecasting with fc.
func NewDetector(fc *forecast.Forecaster) *Detector { return &Detector{fc: fc} }

// Verdict is what a Detector makes of one point.
type Verdict struct {
	Forecast    float64 // the one-step forecast made before the point was seen
	HasForecast bool    // false while the forecaster warms up
	Z, Score    float64
	Warm        bool // the scorer has seen its warm-up: Z and Score count
}

// Observe forecasts y, scores it against the forecast, then feeds it to the
// forecaster: clipped to the band of plausible values while an outlier run
// is short, so a spike does not drag the forecast (and the next points'
// residuals) after it.
func (d *Detector) Observe(y float64, p Params) Verdict {
	var v Verdict
	yhat, ok := d.fc.Predict()
	if !ok {
		d.fc.Update(y)
		return v
	}
	v.Forecast, v.HasForecast = yhat, true
	sigma := d.sc.Sigma()
	v.Z, v.Score, v.Warm = d.sc.Observe(y-yhat, p)
	feed := y
	if v.Warm && v.Z > p.clip && d.outlier < maxClipped {
		d.outlier++
		feed = yhat + math.Copysign(p.clip*sigma, y-yhat)
	} else if v.Z <= p.clip {
		d.outlier = 0
	}
	d.fc.Update(feed)
	return v
}

// Forecaster is the detector's forecaster, for multi-step forecasts and
// prediction intervals.
func (d *Detector) Forecaster() *forecast.Forecaster { return d.fc }
