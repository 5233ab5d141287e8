package anomaly

const (
	// onsetZ is the residual z from which a surprise opens an episode.
	onsetZ = 5
	// calmZ and calmLen end an episode: calmLen points in a row with z
	// below calmZ. A spike's episode ends shortly after it; a burst, a
	// level shift the forecast is still catching up with, or a stretch of
	// turbulence stays one episode however long it lasts.
	calmZ   = 3
	calmLen = 50
	// minEpisode and maxEpisode bound an episode's length in points: at
	// least long enough to cover the ringing after a surprise (a
	// forecaster thrown off, then re-converging), and not so long that a
	// series never calm enough is silenced for good.
	minEpisode = 100
	maxEpisode = 600
)

// onset keeps a Detector's Score to the start of each unusual episode: NAB
// rewards only the first detection of an anomaly and charges every false
// one, and an operator wants one alert per incident. Its zero value is
// outside any episode.
type onset struct {
	age  uint16 // points since the episode opened
	calm uint16 // points in a row with z below calmZ
	in   bool   // in an episode
}

// gate returns the z to score for a point of residual z: 0 inside an
// episode, z outside one. A z of onsetZ or more outside an episode opens
// one.
func (o *onset) gate(z float64) float64 {
	if o.in {
		o.age++
		if z < calmZ {
			o.calm++
		} else {
			o.calm = 0
		}
		if o.age <= minEpisode || (o.age <= maxEpisode && o.calm < calmLen) {
			return 0
		}
		o.in = false // the episode is over; this point may open the next
	}
	if z >= onsetZ {
		*o = onset{in: true}
	}
	return z
}
