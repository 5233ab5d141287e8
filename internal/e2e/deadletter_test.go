package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/metricpipe/metricpipe/internal/testbed"
	"github.com/metricpipe/metricpipe/shared/kafkaio"
)

// TestBadMessagesGoToTheDeadLetterTopic: messages from foreign producers in
// both wire formats, some malformed, reach the consumer; every good point is
// in InfluxDB, every bad message is in the DLQ with its reason and source,
// and the consumer keeps running.
func TestBadMessagesGoToTheDeadLetterTopic(t *testing.T) {
	b := newBed(t, "dlq")
	brokers, influxURL, topic, bucket, ctx := b.brokers, b.influxURL, b.topic, b.bucket, t.Context()
	kc := kafkaio.Config{Brokers: []string{brokers}}

	base := time.Now().Add(-time.Minute).UnixNano()
	lp := func(s string) kafka.Message {
		return kafka.Message{Value: []byte(s), Headers: []kafka.Header{{Key: "Content-Type", Value: []byte("application/vnd.influx.line-protocol")}}}
	}
	good := []kafka.Message{
		lp(fmt.Sprintf("weather,city=oslo temp=-3.5 %d\nweather,city=lima temp=19i %d\n# comment\nweather,city=rome temp=12,ok=true %d", base, base, base)),
		{Value: []byte(fmt.Sprintf(`[{"measurement":"weather","tags":{"city":"kyiv"},"fields":{"temp":1.25},"time":%d}]`, base))},
		{Value: []byte(fmt.Sprintf(`{"measurement":"weather","tags":{"city":"cairo"},"fields":{"temp":30},"time":%d}`, base))},
	}
	// Another writer made weather.label a string field: InfluxDB refuses
	// floats for it for good (HTTP 400), so that message must be isolated
	// from its batch and dead-lettered while the rest is written.
	resp, err := http.Post(influxURL+"/api/v2/write?bucket="+bucket, "text/plain",
		strings.NewReader(fmt.Sprintf("weather,city=x label=\"text\" %d", base)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	bad := []kafka.Message{
		lp(fmt.Sprintf("weather,city=x label=1 %d", base+1)),
		lp("weather,city=oslo temp=NaN"),
		lp(fmt.Sprintf("weather,city=oslo temp=1 %d\nweather,city=oslo", base)),
		{Value: []byte(`{"measurement":"weather","fields":{}}`)},
		{Value: []byte(`{"measurement":"weather","fields":{"temp":"warm"}}`)},
		{Value: []byte("\x00\x01binary")},
	}
	w, err := kafkaio.NewWriter(kc, topic, kafkaio.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.WriteMessages(ctx, append(append([]kafka.Message{}, good...), bad...)...); err != nil {
		t.Fatal(err)
	}

	consumer := b.consumer("consumer", testbed.FreeAddr(t))

	// oslo, lima, rome (temp and ok), kyiv, cairo: 6 field values.
	flux := fmt.Sprintf(`from(bucket: %q) |> range(start: -1h) |> filter(fn: (r) => r._measurement == "weather" and (r._field == "temp" or r._field == "ok")) |> group() |> count()`, bucket)
	testbed.Eventually(t, 60*time.Second, "good points in InfluxDB", func() (bool, string) {
		n, _, err := testbed.FluxInt(ctx, influxURL, flux)
		if err != nil {
			return false, err.Error()
		}
		return n == 6, fmt.Sprintf("%d field values", n)
	})

	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{brokers}, Topic: topic + "-dlq", GroupID: topic + "-reader", StartOffset: kafka.FirstOffset, MaxWait: 500 * time.Millisecond})
	defer r.Close()
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	// What each bad message's reason must mention, by its exact value.
	want := map[string]string{}
	for i, mention := range []string{"field type conflict", "non-finite", "line 2", "json", `"temp"`, "line-protocol"} {
		want[string(bad[i].Value)] = mention
	}
	for range bad {
		m, err := r.ReadMessage(rctx)
		if err != nil {
			t.Fatalf("read DLQ: %v", err)
		}
		reason := kafkaio.HeaderValue(&m, kafkaio.HeaderError)
		if mention, ok := want[string(m.Value)]; !ok {
			t.Errorf("unexpected DLQ message %q (%s)", m.Value, reason)
		} else if !strings.Contains(reason, mention) {
			t.Errorf("DLQ reason for %q = %q, want it to mention %q", m.Value, reason, mention)
		}
		delete(want, string(m.Value))
		if kafkaio.HeaderValue(&m, kafkaio.HeaderSourceTopic) != topic || kafkaio.HeaderValue(&m, kafkaio.HeaderSourceOffset) == "" {
			t.Errorf("DLQ message %q lacks its source headers: %v", m.Value, m.Headers)
		}
		t.Logf("dead-lettered %q: %s", m.Value, reason)
	}
	if len(want) > 0 {
		t.Errorf("not dead-lettered: %q", want)
	}
	if consumer.Exited() {
		t.Fatal("consumer exited on bad input")
	}
	stopGracefully(t, consumer)
}
