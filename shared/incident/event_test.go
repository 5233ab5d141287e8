package incident

import (
	"encoding/json"
	"reflect"
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
// that encodes and decodes to itself.
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
		again, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		e2, err := Decode(again)
		if err != nil || !reflect.DeepEqual(normal(e), normal(e2)) {
			t.Fatalf("round trip of %s: %v\n%+v\n%+v", b, err, e, e2)
		}
	})
}

// normal makes empty and nil collections alike, as JSON does.
func normal(e Event) Event {
	b, _ := json.Marshal(e)
	var out Event
	_ = json.Unmarshal(b, &out)
	return out
}
