// Package kafkaio builds metricpipe's Kafka clients (segmentio/kafka-go) from
// one Config, creates topics, and runs the fetch → handle → commit loop that
// gives the consumer and the analyzer at-least-once delivery. It also
// publishes undecodable messages to the dead-letter topic.
package kafkaio
