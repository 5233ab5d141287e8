package point

import (
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// dump renders a point on one line for table tests, independently of the
// codecs under test: "cpu" [host="a"] {usage=0.5} @17.
func dump(p Point) string {
	var b strings.Builder
	b.WriteString(strconv.Quote(p.Measurement))
	b.WriteString(" [")
	for i, t := range p.Tags {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strconv.Quote(t.Key) + "=" + strconv.Quote(t.Value))
	}
	b.WriteString("] {")
	for i, f := range p.Fields {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strconv.Quote(f.Key) + "=" + strconv.FormatFloat(f.Value, 'g', -1, 64))
	}
	b.WriteString("} @" + strconv.FormatInt(p.Time, 10))
	return b.String()
}

func dumpAll(ps []Point) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = dump(p)
	}
	return out
}

// samePoints reports whether a and b are equal, comparing values bit by bit
// so that -0 and 0 differ, and requires reflect.DeepEqual on top.
func samePoints(a, b []Point) bool {
	if len(a) != len(b) || !reflect.DeepEqual(a, b) {
		return false
	}
	for i := range a {
		for j := range a[i].Fields {
			if math.Float64bits(a[i].Fields[j].Value) != math.Float64bits(b[i].Fields[j].Value) {
				return false
			}
		}
	}
	return true
}

var sentinels = []struct {
	name string
	err  error
}{
	{"ErrSyntax", ErrSyntax},
	{"ErrNonFinite", ErrNonFinite},
	{"ErrNoFields", ErrNoFields},
	{"ErrTooLarge", ErrTooLarge},
	{"ErrDuplicateKey", ErrDuplicateKey},
	{"ErrEmpty", ErrEmpty},
	{"ErrInvalidName", ErrInvalidName},
	{"ErrUnsupportedValue", ErrUnsupportedValue},
	{"ErrUnsortedTags", ErrUnsortedTags},
	{"ErrUnknownContentType", ErrUnknownContentType},
}

// sentinelName returns the name of the sentinel err wraps, or "".
func sentinelName(err error) string {
	for _, s := range sentinels {
		if errors.Is(err, s.err) {
			return s.name
		}
	}
	return ""
}

func TestValidate(t *testing.T) {
	f := func(p Point, want error) {
		t.Helper()
		err := p.Validate()
		if want == nil {
			if err != nil {
				t.Errorf("Validate(%s) = %v, want nil", dump(p), err)
			}
			return
		}
		if !errors.Is(err, want) {
			t.Errorf("Validate(%s) = %v, want %v", dump(p), err, want)
		}
		var de *DecodeError
		if errors.As(err, &de) {
			t.Errorf("Validate(%s) returned a *DecodeError", dump(p))
		}
	}
	fs := []Field{{"v", 1}}
	f(Point{Measurement: "cpu", Fields: fs}, nil)
	f(Point{Measurement: "c p,u=", Tags: []Tag{{"a b", "c,d=e"}, {"b", `x\y`}}, Fields: []Field{{"x=y", math.Copysign(0, -1)}, {"z", math.MaxFloat64}}, Time: -1}, nil)
	f(Point{Measurement: "日本", Tags: []Tag{{"é", "😀"}}, Fields: fs}, nil)
	f(Point{Measurement: "time", Tags: []Tag{{"k", "time"}}, Fields: fs}, nil)

	f(Point{Fields: fs}, ErrInvalidName)
	f(Point{Measurement: "#cpu", Fields: fs}, ErrInvalidName)
	f(Point{Measurement: "cpu\n", Fields: fs}, ErrInvalidName)
	f(Point{Measurement: "c\ru", Fields: fs}, ErrInvalidName)
	f(Point{Measurement: "c\tu", Fields: fs}, ErrInvalidName)
	f(Point{Measurement: "c\x7fu", Fields: fs}, ErrInvalidName)
	f(Point{Measurement: "cpu\xff", Fields: fs}, ErrInvalidName)
	f(Point{Measurement: `cpu\`, Fields: fs}, ErrInvalidName)
	f(Point{Measurement: "cpu", Tags: []Tag{{"", "a"}}, Fields: fs}, ErrInvalidName)
	f(Point{Measurement: "cpu", Tags: []Tag{{"a", ""}}, Fields: fs}, ErrInvalidName)
	f(Point{Measurement: "cpu", Tags: []Tag{{"time", "a"}}, Fields: fs}, ErrInvalidName)
	f(Point{Measurement: "cpu", Tags: []Tag{{"a", "x\ny"}}, Fields: fs}, ErrInvalidName)
	f(Point{Measurement: "cpu", Tags: []Tag{{"a", `x\`}}, Fields: fs}, ErrInvalidName)
	f(Point{Measurement: "cpu", Fields: []Field{{"", 1}}}, ErrInvalidName)
	f(Point{Measurement: "cpu", Fields: []Field{{"time", 1}}}, ErrInvalidName)
	f(Point{Measurement: "cpu", Fields: []Field{{"a\r", 1}}}, ErrInvalidName)

	f(Point{Measurement: "cpu", Tags: []Tag{{"a", "1"}, {"a", "2"}}, Fields: fs}, ErrDuplicateKey)
	f(Point{Measurement: "cpu", Fields: []Field{{"a", 1}, {"b", 2}, {"a", 3}}}, ErrDuplicateKey)
	f(Point{Measurement: "cpu", Tags: []Tag{{"b", "1"}, {"a", "2"}}, Fields: fs}, ErrUnsortedTags)
	f(Point{Measurement: "cpu"}, ErrNoFields)
	f(Point{Measurement: "cpu", Fields: []Field{}}, ErrNoFields)
	f(Point{Measurement: "cpu", Fields: []Field{{"a", math.NaN()}}}, ErrNonFinite)
	f(Point{Measurement: "cpu", Fields: []Field{{"a", math.Inf(1)}}}, ErrNonFinite)
	f(Point{Measurement: "cpu", Fields: []Field{{"a", math.Inf(-1)}}}, ErrNonFinite)

	// Many fields take the map path of the duplicate check.
	many := make([]Field, 100)
	for i := range many {
		many[i] = Field{"f" + strconv.Itoa(i), float64(i)}
	}
	f(Point{Measurement: "cpu", Fields: many}, nil)
	f(Point{Measurement: "cpu", Fields: append(slices.Clone(many), Field{"f7", 0})}, ErrDuplicateKey)
	f(Point{Measurement: "cpu", Fields: append(slices.Clone(many), Field{"f99", 0})}, ErrDuplicateKey)
}

// ValidateAnyOrder is Validate without the tag order: duplicates are still
// found wherever they are, with more tags than the stack permutation holds
// too, and the tags are not modified.
func TestValidateAnyOrder(t *testing.T) {
	tags := func(keys ...string) []Tag {
		ts := make([]Tag, len(keys))
		for i, k := range keys {
			ts[i] = Tag{k, "v" + strconv.Itoa(i)}
		}
		return ts
	}
	many := make([]string, 40)
	for i := range many {
		many[i] = "k" + strconv.Itoa(len(many)-i)
	}
	fs := []Field{{"v", 1}}
	for _, tc := range []struct {
		name string
		p    Point
		want error
	}{
		{"sorted", Point{Measurement: "cpu", Tags: tags("a", "b", "c"), Fields: fs}, nil},
		{"unsorted", Point{Measurement: "cpu", Tags: tags("c", "a", "b"), Fields: fs}, nil},
		{"many unsorted", Point{Measurement: "cpu", Tags: tags(many...), Fields: fs}, nil},
		{"adjacent duplicate", Point{Measurement: "cpu", Tags: tags("b", "a", "a"), Fields: fs}, ErrDuplicateKey},
		{"distant duplicate", Point{Measurement: "cpu", Tags: tags("a", "c", "b", "a"), Fields: fs}, ErrDuplicateKey},
		{"duplicate among many", Point{Measurement: "cpu", Tags: tags(append(slices.Clone(many), "k7")...), Fields: fs}, ErrDuplicateKey},
		{"invalid tag key", Point{Measurement: "cpu", Tags: tags("b", "time"), Fields: fs}, ErrInvalidName},
		{"no fields", Point{Measurement: "cpu", Tags: tags("b", "a")}, ErrNoFields},
		{"duplicate field", Point{Measurement: "cpu", Tags: tags("b", "a"), Fields: []Field{{"x", 1}, {"x", 2}}}, ErrDuplicateKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := slices.Clone(tc.p.Tags)
			if err := tc.p.ValidateAnyOrder(); !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("ValidateAnyOrder(%s) = %v, want %v", dump(tc.p), err, tc.want)
			}
			if !slices.Equal(before, tc.p.Tags) {
				t.Fatalf("ValidateAnyOrder modified the tags: %v", tc.p.Tags)
			}
		})
	}
}

func TestSortTagsAndClone(t *testing.T) {
	p := Point{Measurement: "m", Tags: []Tag{{"c", "3"}, {"a", "1"}, {"b", "2"}}, Fields: []Field{{"v", 1}}, Time: 9}
	p.SortTags()
	if got, want := dump(p), `"m" ["a"="1" "b"="2" "c"="3"] {"v"=1} @9`; got != want {
		t.Fatalf("SortTags: got %s, want %s", got, want)
	}
	q := p.Clone()
	if !reflect.DeepEqual(p, q) {
		t.Fatalf("Clone: got %s, want %s", dump(q), dump(p))
	}
	q.Tags[0].Value = "changed"
	q.Fields[0].Value = 2
	q.Tags = append(q.Tags, Tag{"d", "4"})
	if got, want := dump(p), `"m" ["a"="1" "b"="2" "c"="3"] {"v"=1} @9`; got != want {
		t.Fatalf("Clone shares memory with the original: %s", got)
	}
	if c := (&Point{Measurement: "m"}).Clone(); c.Tags != nil || c.Fields != nil {
		t.Fatalf("Clone turned nil slices into %#v", c)
	}
}

func TestAppendSeriesKey(t *testing.T) {
	f := func(p Point, want string) {
		t.Helper()
		if got := string(AppendSeriesKey(nil, &p)); got != want {
			t.Errorf("AppendSeriesKey(%s) = %q, want %q", dump(p), got, want)
		}
	}
	f(Point{Measurement: "cpu"}, "cpu")
	f(Point{Measurement: "cpu", Tags: []Tag{{"host", "a"}, {"region", "eu"}}}, "cpu,host=a,region=eu")
	f(Point{Measurement: "cpu", Tags: []Tag{{"region", "eu"}, {"host", "a"}}}, "cpu,host=a,region=eu")
	f(Point{Measurement: "c p,u=1", Tags: []Tag{{"k e=y", "v,a l=ue"}}}, `c\ p\,u=1,k\ e\=y=v\,a\ l\=ue`)
	f(Point{Measurement: `a\b`, Tags: []Tag{{`k\,`, `v\ x`}}}, `a\b,k\\,=v\\ x`)

	// Every order of the same tags gives the same key, with more tags than
	// the stack permutation holds too.
	for _, n := range []int{3, 32, 33, 100} {
		tags := make([]Tag, n)
		for i := range tags {
			tags[i] = Tag{"k" + strconv.Itoa(i), "v"}
		}
		sorted := Point{Measurement: "m", Tags: slices.Clone(tags)}
		sorted.SortTags()
		want := string(AppendSeriesKey(nil, &sorted))
		r := rand.New(rand.NewPCG(1, uint64(n)))
		for range 20 {
			r.Shuffle(len(tags), func(i, j int) { tags[i], tags[j] = tags[j], tags[i] })
			p := Point{Measurement: "m", Tags: tags}
			before := slices.Clone(tags)
			if got := string(AppendSeriesKey(nil, &p)); got != want {
				t.Fatalf("n=%d: key depends on tag order: %q != %q", n, got, want)
			}
			if !slices.Equal(before, tags) {
				t.Fatalf("n=%d: AppendSeriesKey modified the tags", n)
			}
		}
	}
}

// samplePoint is a typical Telegraf-like point.
func samplePoint() Point {
	return Point{
		Measurement: "cpu",
		Tags:        []Tag{{"cpu", "cpu-total"}, {"host", "web-01.example.com"}, {"region", "eu-west-1"}},
		Fields:      []Field{{"usage_user", 12.345}, {"usage_system", 3.25}, {"usage_idle", 84.405}, {"n", 3}},
		Time:        1700000000123456789,
	}
}

func TestEncodersDoNotAllocate(t *testing.T) {
	p := samplePoint()
	unsorted := samplePoint()
	slices.Reverse(unsorted.Tags)
	buf := make([]byte, 0, 1024)
	for name, fn := range map[string]func(){
		"AppendLine":               func() { buf = AppendLine(buf[:0], &p) },
		"AppendLine/unsorted":      func() { buf = AppendLine(buf[:0], &unsorted) },
		"ValidateAnyOrder":         func() { _ = unsorted.ValidateAnyOrder() },
		"AppendJSON":               func() { buf = AppendJSON(buf[:0], &p) },
		"AppendSeriesKey":          func() { buf = AppendSeriesKey(buf[:0], &p) },
		"AppendSeriesKey/unsorted": func() { buf = AppendSeriesKey(buf[:0], &unsorted) },
	} {
		if n := testing.AllocsPerRun(100, fn); n != 0 {
			t.Errorf("%s: %v allocs/op, want 0", name, n)
		}
	}
}

func TestDecodersAllocateLittle(t *testing.T) {
	p := samplePoint()
	line := AppendLine(nil, &p)
	js := AppendJSON(nil, &p)
	dst := make([]Point, 0, 4)
	var err error
	// The payload copy, the tags array and the fields array.
	const want = 3
	for name, fn := range map[string]func(){
		"DecodeLine": func() { dst, err = Decoder{}.DecodeLine(dst[:0], line) },
		"DecodeJSON": func() { dst, err = Decoder{}.DecodeJSON(dst[:0], js) },
	} {
		if n := testing.AllocsPerRun(100, fn); n > want || err != nil {
			t.Errorf("%s: %v allocs/op (err %v), want <= %d", name, n, err, want)
		}
	}
}

// randomPoint builds a valid point exercising escapes, Unicode, extreme
// values and many keys.
func randomPoint(r *rand.Rand) Point {
	const alphabet = "abcxyz09 ,=\\\"#{}[]:_-.éü日本😀"
	runes := []rune(alphabet)
	name := func(kind nameKind) string {
		for {
			n := 1 + r.IntN(8)
			var b strings.Builder
			for range n {
				b.WriteRune(runes[r.IntN(len(runes))])
			}
			if s := b.String(); nameProblem(s, kind) == "" {
				return s
			}
		}
	}
	value := func() float64 {
		switch r.IntN(12) {
		case 0:
			return math.Copysign(0, -1)
		case 1:
			return math.MaxFloat64
		case 2:
			return -math.SmallestNonzeroFloat64
		case 3:
			return 1e21
		case 4:
			return 1e-7
		case 5:
			return float64(r.Int64())
		case 6:
			return float64(r.IntN(100))
		default:
			for {
				if v := math.Float64frombits(r.Uint64()); !math.IsNaN(v) && !math.IsInf(v, 0) {
					return v
				}
			}
		}
	}
	p := Point{Measurement: name(kindMeasurement)}
	nt := r.IntN(5)
	if r.IntN(20) == 0 {
		nt = 40
	}
	for range nt {
		k := name(kindKey)
		if !slices.ContainsFunc(p.Tags, func(t Tag) bool { return t.Key == k }) {
			p.Tags = append(p.Tags, Tag{k, name(kindValue)})
		}
	}
	p.SortTags()
	nf := 1 + r.IntN(5)
	if r.IntN(20) == 0 {
		nf = 40
	}
	for range nf {
		k := name(kindKey)
		if !slices.ContainsFunc(p.Fields, func(f Field) bool { return f.Key == k }) {
			p.Fields = append(p.Fields, Field{k, value()})
		}
	}
	switch r.IntN(4) {
	case 0:
	case 1:
		p.Time = r.Int64() - math.MaxInt64/2
	case 2:
		p.Time = math.MinInt64
	default:
		p.Time = 1700000000000000000 + r.Int64N(1e18)
	}
	return p
}

func TestRoundTripProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(2024, 11))
	var d Decoder
	for i := range 5000 {
		p := randomPoint(r)
		if err := p.Validate(); err != nil {
			t.Fatalf("generated an invalid point %s: %v", dump(p), err)
		}
		line, keyEnd := AppendLineKeyed(nil, &p)
		if key := AppendSeriesKey(nil, &p); string(line[:keyEnd]) != string(key) {
			t.Fatalf("#%d line %q begins with key %q, want the series key %q", i, line, line[:keyEnd], key)
		}
		got, err := d.DecodeLine(nil, line)
		if err != nil || !samePoints(got, []Point{p}) {
			t.Fatalf("#%d line round trip of %s via %q: got %q, %v", i, dump(p), line, dumpAll(got), err)
		}
		js := AppendJSON(nil, &p)
		got, err = d.DecodeJSON(nil, js)
		if err != nil || !samePoints(got, []Point{p}) {
			t.Fatalf("#%d JSON round trip of %s via %s: got %q, %v", i, dump(p), js, dumpAll(got), err)
		}
	}
}
