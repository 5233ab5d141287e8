package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/metricpipe/metricpipe/shared/influx"
	"github.com/metricpipe/metricpipe/shared/kafkaio"
	"github.com/metricpipe/metricpipe/shared/movavg"
)

// TestHandlerDeadLettersOnlyWhatInfluxDBRefuses: InfluxDB refuses the
// moving average of one series (its field already holds strings) and every
// point of another. The first series' raw points are still written and
// only its averages are dead-lettered; the other's message is
// dead-lettered naming its refused point; every other point is written.
func TestHandlerDeadLettersOnlyWhatInfluxDBRefuses(t *testing.T) {
	var mu sync.Mutex
	var accepted []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		lines := strings.Split(strings.TrimSpace(string(body)), "\n")
		for _, l := range lines {
			if strings.Contains(l, "s=evil") || (strings.Contains(l, "s=avg") && strings.Contains(l, "v_sma")) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusBadRequest)
				_, _ = io.WriteString(w, `{"code":"invalid","message":"partial write: field type conflict"}`)
				return
			}
		}
		mu.Lock()
		accepted = append(accepted, lines...)
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "dlq"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	kc := kafkaio.Config{Brokers: cluster.ListenAddrs(), ClientID: "test"}
	dlq, err := kafkaio.NewDeadLetters(kc, "dlq", "consumer")
	if err != nil {
		t.Fatal(err)
	}
	defer dlq.Close()
	sink, err := influx.NewSink(influx.Config{URL: srv.URL, Bucket: "db/rp", BatchSize: 100, FlushInterval: time.Second, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	reg := prometheus.NewRegistry()
	out := &output{writer: influx.NewWriter(sink, zerolog.Nop(), reg, "consumer"), dlq: dlq, metrics: newMetrics(reg), log: zerolog.Nop(), hotLog: zerolog.Nop()}
	h, err := newHandler(out, movavg.Config{Default: movavg.Params{SMAWindow: 2}, MaxSeries: 100}, time.Hour, 0)
	if err != nil {
		t.Fatal(err)
	}
	msg := func(offset int64, value string) kafka.Message {
		return kafka.Message{Topic: "metrics", Offset: offset, Value: []byte(value), Time: time.Unix(0, 5)}
	}
	batch := []kafka.Message{
		msg(0, "m,s=avg v=1 1\nm,s=ok v=1 1"),
		msg(1, "m,s=avg v=2 2\nm,s=ok v=3 2"), // both get v_sma: s=avg's is refused
		msg(2, "m,s=evil v=5 2\nm,s=ok v=5 3"),
	}
	if err := h.Handle(t.Context(), batch); err != nil {
		t.Fatal(err)
	}
	slices.Sort(accepted)
	accepted = slices.Compact(accepted)
	want := []string{"m,s=avg v=1 1", "m,s=avg v=2 2", "m,s=ok v=1 1", "m,s=ok v=3,v_sma=2 2", "m,s=ok v=5,v_sma=4 3"}
	if !slices.Equal(accepted, want) {
		t.Errorf("written\n%q\nwant\n%q", accepted, want)
	}
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: kc.Brokers, Topic: "dlq", Partition: 0, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var letters []string
	for range 2 {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("after %q: %v", letters, err)
		}
		letters = append(letters, strings.TrimSpace(string(m.Value))+" | "+kafkaio.HeaderValue(&m, kafkaio.HeaderError))
	}
	if !strings.HasPrefix(letters[0], "m,s=avg v_sma=1.5 2 | ") || !strings.Contains(letters[0], "field type conflict") {
		t.Errorf("first dead letter %q, want s=avg's refused average with its reason", letters[0])
	}
	if !strings.HasPrefix(letters[1], "m,s=evil v=5 2\nm,s=ok v=5 3 | point 1 of 2: ") {
		t.Errorf("second dead letter %q, want the whole message naming its refused point 1 of 2", letters[1])
	}
}
