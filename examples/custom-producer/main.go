// Command custom-producer is a complete metricpipe producer written with the
// producer/client package: it sends room temperatures to the metrics topic.
//
//	METRICPIPE_KAFKA_BROKERS=127.0.0.1:9092 go run ./examples/custom-producer -n 1000
package main

import (
	"context"
	"flag"
	"fmt"
	"math"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/metricpipe/metricpipe/producer/client"
	"github.com/metricpipe/metricpipe/shared/kafkaio"
	"github.com/metricpipe/metricpipe/shared/point"
)

func main() {
	n := flag.Int("n", 100, "points to send")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *n); err != nil {
		fmt.Fprintln(os.Stderr, "custom-producer:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, n int) error {
	kc := kafkaio.Config{Brokers: strings.Split(getenv("METRICPIPE_KAFKA_BROKERS", "127.0.0.1:9092"), ",")}
	topic := getenv("METRICPIPE_TOPIC", kafkaio.DefaultTopic)

	// The producer service creates the topic; a standalone producer may too.
	admin, err := kafkaio.NewAdmin(kc)
	if err != nil {
		return err
	}
	if err := admin.EnsureTopics(ctx, kafkaio.TopicSpec{Name: topic, Partitions: 8, ReplicationFactor: 1}); err != nil {
		return err
	}

	p, err := client.New(client.Config{Kafka: kc, Topic: topic},
		client.WithErrorHandler(func(err error, points int) { fmt.Fprintln(os.Stderr, "lost:", err) }))
	if err != nil {
		return err
	}
	start := time.Now().Add(-time.Duration(n) * time.Second).Truncate(time.Second)
	rooms := []string{"lab", "office", "server-room"}
	for i := range n {
		room := rooms[i%len(rooms)]
		err := p.Send(ctx, point.Point{
			Measurement: "room_temperature",
			Tags:        []point.Tag{{Key: "room", Value: room}},
			Fields:      []point.Field{{Key: "celsius", Value: 20 + 2*math.Sin(float64(i)/50)}},
			Time:        start.Add(time.Duration(i) * time.Second).UnixNano(),
		})
		if err != nil {
			return err
		}
	}
	if err := p.Close(ctx); err != nil { // waits for Kafka's acknowledgements
		return err
	}
	st := p.Stats()
	fmt.Printf("sent %d points to %s, %d acknowledged\n", st.Sent, topic, st.Acked)
	return nil
}

func getenv(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
