package incident

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestDecode(t *testing.T) {
	cases := []struct{ in, err string }{
		{in: `{"id":"inc-1","state":"open","version":1}`},
		{in: `{"id":"inc-1","state":"merged","merged_into":"inc-0"}`},
		{in: `{"state":"open"}`, err: "no id"},
		{in: `{"id":"inc-1","state":"firing"}`, err: `state "firing": want open, resolved or merged`},
		{in: `{"id":"inc-1","state":"merged"}`, err: "merged into nothing"},
		{in: `{"id":`, err: "decode incident event"},
	}
	for _, c := range cases {
		_, err := Decode([]byte(c.in))
		if (err == nil) != (c.err == "") || (err != nil && !strings.Contains(err.Error(), c.err)) {
			t.Errorf("Decode(%s): %v, want %q", c.in, err, c.err)
		}
	}
}

// FuzzDecode: whatever a topic holds, Decode returns an error or an event
// that encodes to JSON Decode accepts and reads back to the same encoding.
func FuzzDecode(f *testing.F) {
	c := NewCorrelator(config())
	for _, e := range feed(c, fire("a", 0, "cluster=eu,host=h,service=db"), fire("b", 40, "cluster=eu,host=g,service=api")) {
		b, _ := json.Marshal(e)
		f.Add(b)
	}
	f.Add([]byte(`{"id":"x","state":"merged","merged_into":"y"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := Decode(b)
		if err != nil {
			return
		}
		once, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		e2, err := Decode(once)
		if err != nil {
			t.Fatalf("Decode(%s) = %v: its own encoding of %s", once, err, b)
		}
		twice, err := json.Marshal(e2)
		if err != nil || !bytes.Equal(once, twice) {
			t.Fatalf("round trip of %s: %v\n%s\n%s", b, err, once, twice)
		}
	})
}
