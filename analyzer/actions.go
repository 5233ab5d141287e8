package main

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/segmentio/kafka-go"

	"github.com/metricpipe/metricpipe/shared/action"
	"github.com/metricpipe/metricpipe/shared/kafkaio"
)

// auditWriter publishes the executor's audit records to the actions topic,
// keyed by fingerprint like the alert events they follow (action.Publisher).
type auditWriter struct {
	w messageWriter
}

func (a auditWriter) Publish(ctx context.Context, recs []action.Record) error {
	msgs := make([]kafka.Message, 0, len(recs))
	for i := range recs {
		v, err := json.Marshal(&recs[i])
		if err != nil {
			return fmt.Errorf("encode audit record of %s: %w", recs[i].Fingerprint, err)
		}
		msgs = append(msgs, kafka.Message{Key: []byte(recs[i].Fingerprint), Value: v,
			Headers: []kafka.Header{{Key: kafkaio.HeaderContentType, Value: []byte("application/json")}}})
	}
	if err := a.w.WriteMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("publish %d audit records: %w", len(msgs), err)
	}
	return nil
}

// actionsTopic is --actions-topic, or <alert topic>-actions when empty.
func actionsTopic(name, alertTopic string) string {
	if name != "" {
		return name
	}
	return alertTopic + "-actions"
}
