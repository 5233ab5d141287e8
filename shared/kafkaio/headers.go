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
// case-insensitively, as HTTP-minded producers vary the case), or "". The
// string shares the header's bytes instead of copying them, as it is read
// for every message: it is valid as long as the message is (see Handler).
func HeaderValue(m *kafka.Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key || strings.EqualFold(h.Key, key) {
			return aliasString(h.Value)
		}
	}
	return ""
}
