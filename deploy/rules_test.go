package deploy

import (
	"os"
	"strings"
	"testing"

	"github.com/metricpipe/metricpipe/shared/rules"
)

// TestStarterRulesSayWhatHappened: the texts of deploy/rules.yaml show the
// point's value and its forecast (not the anomaly score as "the value"),
// and say something else when an alert resolves.
func TestStarterRulesSayWhatHappened(t *testing.T) {
	src, err := os.ReadFile("rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	set, err := rules.Parse("rules.yaml", src)
	if err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{"series": "7", "host": "host-3"}
	smp := &rules.Sample{Value: 123.45, Forecast: 50.5, HasForecast: true}
	for _, r := range set.Rules {
		v := rules.Verdict{Value: 0.97, Threshold: 150, HasThreshold: true}
		firing, _ := r.Render(v, labels, "firing", smp)
		resolved, _ := r.Render(v, labels, "resolved", smp)
		if firing == resolved {
			t.Errorf("rule %s says %q both when firing and when resolved", r.Name, firing)
		}
		if r.Kind == rules.Anomaly && (!strings.Contains(firing, "123.45") || !strings.Contains(firing, "50.50")) {
			t.Errorf("rule %s: %q does not show the point's value 123.45 and its forecast 50.50", r.Name, firing)
		}
	}
}
