package kafkaio

import (
	"strings"

	"github.com/segmentio/kafka-go"
)

// HeaderContentType names a message's wire format ("application/json",
// "application/vnd.influx.line-protocol"); without it the format is detected
// from the first byte.
const HeaderContentType = "content-type"

// HeaderValue returns the value of m's first header named key (compared
// case-insensitively, as HTTP-minded producers vary the case), or "".
func HeaderValue(m *kafka.Message, key string) string {
	for _, h := range m.Headers {
		if strings.EqualFold(h.Key, key) {
			return string(h.Value)
		}
	}
	return ""
}
