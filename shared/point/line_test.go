package point

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unsafe"
)

func TestDecodeLine(t *testing.T) {
	f := func(in string, want ...string) {
		t.Helper()
		got, err := Decoder{}.DecodeLine(nil, []byte(in))
		if err != nil {
			t.Errorf("DecodeLine(%q): %v", in, err)
			return
		}
		if g := dumpAll(got); !slices.Equal(g, want) {
			t.Errorf("DecodeLine(%q)\n got %q\nwant %q", in, g, want)
		}
		for _, p := range got {
			if err := p.Validate(); err != nil {
				t.Errorf("DecodeLine(%q) returned invalid point %s: %v", in, dump(p), err)
			}
		}
	}
	f("cpu usage=0.5", `"cpu" [] {"usage"=0.5} @0`)
	f("cpu,host=a,region=eu usage=0.5,idle=99 1700000000000000000",
		`"cpu" ["host"="a" "region"="eu"] {"usage"=0.5 "idle"=99} @1700000000000000000`)
	f("cpu,region=eu,host=a,az=1 x=1", `"cpu" ["az"="1" "host"="a" "region"="eu"] {"x"=1} @0`)
	// Integers, unsigned integers and booleans.
	f("m a=1i,b=-3i,c=12u,d=t,e=FALSE,f=True,g=0u,h=T,i=F,j=true,k=false,l=TRUE,m=False",
		`"m" [] {"a"=1 "b"=-3 "c"=12 "d"=1 "e"=0 "f"=1 "g"=0 "h"=1 "i"=0 "j"=1 "k"=0 "l"=1 "m"=0} @0`)
	f("m a=-9223372036854775808i,b=18446744073709551615u,c=9007199254740993i",
		`"m" [] {"a"=-9.223372036854776e+18 "b"=1.8446744073709552e+19 "c"=9.007199254740992e+15} @0`)
	// Float forms.
	f("m a=1.,b=.5,c=1e3,d=-2.5E-3,e=1e+21,f=-0,g=1.7976931348623157e308,h=1e-400,i=007,j=-.5e-1",
		`"m" [] {"a"=1 "b"=0.5 "c"=1000 "d"=-0.0025 "e"=1e+21 "f"=-0 "g"=1.7976931348623157e+308 "h"=0 "i"=7 "j"=-0.05} @0`)
	// String fields are skipped, even across lines.
	f(`m s="hello, world",v=1,t="a\"b\\",u="x y=z"`, `"m" [] {"v"=1} @0`)
	f("m s=\"line1\nline2\",v=2 5\nn v=3", `"m" [] {"v"=2} @5`, `"n" [] {"v"=3} @0`)
	// Escapes.
	f(`my\ meas\,ure,ta\ g\=k=v\,a\ l\=ue fi\ eld\,k\=ey=1`,
		`"my meas,ure" ["ta g=k"="v,a l=ue"] {"fi eld,k=ey"=1} @0`)
	f(`m\b,k\x=v\\y f\x=1`, `"m\\b" ["k\\x"="v\\\\y"] {"f\\x"=1} @0`)
	f(`a\\,b x=1`, `"a\\,b" [] {"x"=1} @0`)
	f(`a\=b x=1`, `"a\\=b" [] {"x"=1} @0`)
	f("a=b x=1", `"a=b" [] {"x"=1} @0`)
	f(`m,"k"="v" "f"=1`, `"m" ["\"k\""="\"v\""] {"\"f\""=1} @0`)
	f(`\ m x=1`, `" m" [] {"x"=1} @0`)
	f(`\#m x=1`, `"\\#m" [] {"x"=1} @0`)
	// Comments, blank lines, indentation, CRLF, extra spaces.
	f("# comment\n\n   \t\n  cpu x=1\n\t# indented comment\nmem y=2\n# end",
		`"cpu" [] {"x"=1} @0`, `"mem" [] {"y"=2} @0`)
	f("cpu x=1 10\r\nmem y=2\r\n\r\n", `"cpu" [] {"x"=1} @10`, `"mem" [] {"y"=2} @0`)
	f("cpu x=1\r", `"cpu" [] {"x"=1} @0`)
	f("cpu x=1 10   \ncpu x=2   ", `"cpu" [] {"x"=1} @10`, `"cpu" [] {"x"=2} @0`)
	f("cpu,h=a    x=1    10", `"cpu" ["h"="a"] {"x"=1} @10`)
	// Timestamps.
	f("cpu x=1 -5", `"cpu" [] {"x"=1} @-5`)
	f("cpu x=1 0", `"cpu" [] {"x"=1} @0`)
	f("cpu x=1 -9223372036854775808", `"cpu" [] {"x"=1} @-9223372036854775808`)
	// Unicode.
	f("温度,地点=東京 値=21.5", `"温度" ["地点"="東京"] {"値"=21.5} @0`)
	// A tag and a field may share a key.
	f("m,k=v k=1", `"m" ["k"="v"] {"k"=1} @0`)
}

func TestDecodeLineManyKeys(t *testing.T) {
	// More than linearKeys tags and fields take the map path of the
	// duplicate check; more than the stack capacities exercise growth.
	var b strings.Builder
	for line := range 3 {
		b.WriteString("m")
		for i := range 50 {
			b.WriteString(",t" + strconv.Itoa(49-i) + "=v")
		}
		for i := range 50 {
			sep := ","
			if i == 0 {
				sep = " "
			}
			b.WriteString(sep + "f" + strconv.Itoa(i) + "=" + strconv.Itoa(line*100+i))
		}
		b.WriteString(`,s="str"` + "\n")
	}
	ps, err := Decoder{}.DecodeLine(nil, []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 3 {
		t.Fatalf("got %d points, want 3", len(ps))
	}
	for i, p := range ps {
		if err := p.Validate(); err != nil || len(p.Tags) != 50 || len(p.Fields) != 50 || p.Fields[49].Value != float64(i*100+49) {
			t.Fatalf("point %d: %v: %s", i, err, dump(p))
		}
		if cap(p.Tags) != len(p.Tags) || cap(p.Fields) != len(p.Fields) {
			t.Fatalf("point %d: shared arrays not capped", i)
		}
	}
	for _, dup := range []string{",t7=x", ",t49=x"} {
		in := strings.Replace(b.String(), " f0=", dup+" f0=", 1)
		if _, err := (Decoder{}).DecodeLine(nil, []byte(in)); !errors.Is(err, ErrDuplicateKey) {
			t.Errorf("duplicate tag %s among many: got %v", dup, err)
		}
	}
	for _, dup := range []string{",f7=1", ",f49=2", `,s=3`} {
		in := strings.Replace(b.String(), `,s="str"`, `,s="str"`+dup, 1)
		if _, err := (Decoder{}).DecodeLine(nil, []byte(in)); !errors.Is(err, ErrDuplicateKey) {
			t.Errorf("duplicate field %s among many: got %v", dup, err)
		}
	}
}

// checkDecodeError asserts that err is a *DecodeError of format fm wrapping
// want at line and offset.
func checkDecodeError(t *testing.T, fm Format, in string, err, want error, line, offset int) {
	t.Helper()
	var de *DecodeError
	if !errors.As(err, &de) {
		t.Errorf("%s %q: got %v, want a *DecodeError", fm, in, err)
		return
	}
	if !errors.Is(err, want) || de.Format != fm || de.Line != line || de.Offset != offset {
		t.Errorf("%s %q: got %v (%s, line %d, offset %d), want %v at line %d, offset %d",
			fm, in, err, de.Format, de.Line, de.Offset, want, line, offset)
	}
}

func TestDecodeLineErrors(t *testing.T) {
	prior := Point{Measurement: "prior", Fields: []Field{{"v", 1}}}
	f := func(in string, want error, line, offset int) {
		t.Helper()
		dst := []Point{prior}
		got, err := Decoder{}.DecodeLine(dst, []byte(in))
		checkDecodeError(t, FormatLine, in, err, want, line, offset)
		if len(got) != 1 || got[0].Measurement != "prior" {
			t.Errorf("%q: dst changed on error: %q", in, dumpAll(got))
		}
	}
	f("", ErrEmpty, 1, 0)
	f("# only a comment\n\n", ErrEmpty, 3, 18)
	f("  \t\r\n", ErrEmpty, 2, 5)
	f("cpu", ErrNoFields, 1, 3)
	f("cpu ", ErrNoFields, 1, 4)
	f("cpu,host=a", ErrNoFields, 1, 10)
	f("cpu,host=a   \r\n", ErrNoFields, 1, 13)
	f("cpu x", ErrSyntax, 1, 5)
	f("cpu x y=1", ErrSyntax, 1, 5)
	f("cpu x=", ErrSyntax, 1, 6)
	f("cpu x=,y=1", ErrSyntax, 1, 6)
	f("cpu x=1,y=2\ncpu x=NaN", ErrNonFinite, 2, 18)
	f("cpu x=inf", ErrNonFinite, 1, 6)
	f("cpu x=-Inf", ErrNonFinite, 1, 6)
	f("cpu x=+infinity", ErrNonFinite, 1, 6)
	f("cpu x=1e999", ErrNonFinite, 1, 6)
	f("cpu x=-1e999", ErrNonFinite, 1, 6)
	f("cpu x=+1", ErrSyntax, 1, 6)
	f("cpu x=1x", ErrSyntax, 1, 6)
	f("cpu x=1.5i", ErrSyntax, 1, 6)
	f("cpu x=0x10", ErrSyntax, 1, 6)
	f("cpu x=1_000", ErrSyntax, 1, 6)
	f("cpu x=.", ErrSyntax, 1, 6)
	f("cpu x=1e", ErrSyntax, 1, 6)
	f("cpu x=-", ErrSyntax, 1, 6)
	f("cpu x=-1u", ErrSyntax, 1, 6)
	f("cpu x=i", ErrSyntax, 1, 6)
	f("cpu x=yes", ErrSyntax, 1, 6)
	f("cpu x=1\t", ErrSyntax, 1, 6)
	f("cpu x=9223372036854775808i", ErrSyntax, 1, 6)
	f("cpu x=18446744073709551616u", ErrSyntax, 1, 6)
	f("cpu x=1 12a", ErrSyntax, 1, 8)
	f("cpu x=1 1.5", ErrSyntax, 1, 8)
	f("cpu x=1 99999999999999999999", ErrSyntax, 1, 8)
	f("cpu x=1 1 2", ErrSyntax, 1, 10)
	f("cpu x=1 ,y=2", ErrSyntax, 1, 8)
	f("cpu x=1 10\rmem", ErrSyntax, 1, 10)
	f("cpu x=1\rmem y=2", ErrSyntax, 1, 7)
	f(`cpu s="abc"`, ErrNoFields, 1, 0) // string-only lines are skipped; none left
	f(`cpu s="abc",t="d" 5`, ErrNoFields, 1, 0)
	f("# c\n"+`cpu s="abc"`+"\n\n"+`mem s="d"`, ErrNoFields, 2, 4)
	f(`cpu s="abc`, ErrSyntax, 1, 6)
	f(`cpu s="abc\"`, ErrSyntax, 1, 6)
	f(`cpu s="a"b=1`, ErrSyntax, 1, 9)
	f("cpu,host=a,host=b x=1", ErrDuplicateKey, 1, 11)
	f("cpu x=1,x=2", ErrDuplicateKey, 1, 8)
	f(`cpu x="s",x=2`, ErrDuplicateKey, 1, 10)
	f(`cpu x=2,x="s"`, ErrDuplicateKey, 1, 8)
	f("cpu,host= x=1", ErrInvalidName, 1, 9)
	f("cpu,=a x=1", ErrInvalidName, 1, 4)
	f("cpu, x=1", ErrInvalidName, 1, 4)
	f("cpu,host x=1", ErrSyntax, 1, 8)
	f("cpu,host\n", ErrSyntax, 1, 8)
	f("cpu,a=b=c x=1", ErrSyntax, 1, 7)
	f(",host=a x=1", ErrInvalidName, 1, 0)
	f("cpu,time=a x=1", ErrInvalidName, 1, 4)
	f("cpu time=1", ErrInvalidName, 1, 4)
	f("cpu x=1,=2", ErrInvalidName, 1, 8)
	f("cpu x=1,", ErrInvalidName, 1, 8)
	f("cpu x=1, y=2", ErrInvalidName, 1, 8)
	f("cp\tu x=1", ErrInvalidName, 1, 0)
	f("cpu,host=a\x00b x=1", ErrInvalidName, 1, 9)
	f("cpu,h\x7f=a x=1", ErrInvalidName, 1, 4)
	f("cpu x\x01=1", ErrInvalidName, 1, 4)
	f("cpu\xff x=1", ErrInvalidName, 1, 0)
	f("cpu,host=a\\", ErrInvalidName, 1, 9)
	f("cpu\\ x=1", ErrNoFields, 1, 8)
	f("\rcpu x=1", ErrInvalidName, 1, 0)
	// Line numbers count every "\n", also those inside string values.
	f("# c\r\ncpu x=1\r\ncpu x=bad\r\n", ErrSyntax, 3, 20)
	f("m s=\"a\nb\",v=1\nm x", ErrSyntax, 3, 17)
}

func TestDecodeLineTooLarge(t *testing.T) {
	d := Decoder{MaxMessageBytes: 8}
	in := "cpu x=1\ncpu x=2"
	_, err := d.DecodeLine(nil, []byte(in))
	checkDecodeError(t, FormatLine, in, err, ErrTooLarge, 2, 8)
	if _, err := d.DecodeLine(nil, []byte(in[:8])); err != nil {
		t.Errorf("payload of exactly MaxMessageBytes: %v", err)
	}
	big := []byte(strings.Repeat("cpu x=1\n", DefaultMaxMessageBytes/8+1))
	_, err = Decoder{}.DecodeLine(nil, big)
	checkDecodeError(t, FormatLine, "big", err, ErrTooLarge, DefaultMaxMessageBytes/8+1, DefaultMaxMessageBytes)
}

func TestDecodeLineSharesNothingWithPayload(t *testing.T) {
	payload := []byte("cpu,host=a x=1\nmem,host=b y=2\n")
	ps, err := Decoder{}.DecodeLine(nil, payload)
	if err != nil {
		t.Fatal(err)
	}
	for i := range payload {
		payload[i] = 'X'
	}
	if got, want := dumpAll(ps), []string{`"cpu" ["host"="a"] {"x"=1} @0`, `"mem" ["host"="b"] {"y"=2} @0`}; !slices.Equal(got, want) {
		t.Fatalf("points changed with the payload: %q", got)
	}
	// Appending to one point's slices must not overwrite the next point.
	ps[0].Tags = append(ps[0].Tags, Tag{"z", "z"})
	ps[0].Fields = append(ps[0].Fields, Field{"z", 0})
	if got := dump(ps[1]); got != `"mem" ["host"="b"] {"y"=2} @0` {
		t.Fatalf("append to point 0 changed point 1: %s", got)
	}
}

// With Alias, the points refer to the payload instead of a copy: the same
// points, one allocation fewer.
func TestDecodeAlias(t *testing.T) {
	p := samplePoint()
	line, js := AppendLine(nil, &p), AppendJSON(nil, &p)
	for _, tc := range []struct {
		name    string
		payload []byte
		decode  func(Decoder, []Point, []byte) ([]Point, error)
	}{
		{"line", line, Decoder.DecodeLine},
		{"json", js, Decoder.DecodeJSON},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want, err := tc.decode(Decoder{}, nil, tc.payload)
			if err != nil {
				t.Fatal(err)
			}
			got, err := tc.decode(Decoder{Alias: true}, nil, tc.payload)
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Fatalf("aliased: %v, %v; copied: %v", dumpAll(got), err, dumpAll(want))
			}
			if unsafe.StringData(got[0].Measurement) != &tc.payload[bytes.Index(tc.payload, []byte("cpu"))] {
				t.Fatal("the measurement does not refer to the payload")
			}
			dst := make([]Point, 0, 1)
			copied := testing.AllocsPerRun(100, func() { dst, _ = tc.decode(Decoder{}, dst[:0], tc.payload) })
			aliased := testing.AllocsPerRun(100, func() { dst, _ = tc.decode(Decoder{Alias: true}, dst[:0], tc.payload) })
			if aliased != copied-1 {
				t.Fatalf("%v allocs/op aliased, %v copied: want one fewer", aliased, copied)
			}
		})
	}
}

// With an Arena, the points' tags and fields come from it: the same points,
// two allocations fewer, and after a Reset the arena's memory is reused.
func TestDecodeArena(t *testing.T) {
	p := samplePoint()
	two := append(AppendLine(nil, &p), AppendLine(nil, &Point{Measurement: "m", Fields: []Field{{"v", 2}}})...)
	want, err := Decoder{}.DecodeLine(nil, two)
	if err != nil {
		t.Fatal(err)
	}
	a := &Arena{}
	d := Decoder{Arena: a}
	got, err := d.DecodeLine(nil, two)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("with an arena: %v, %v; without: %v", dumpAll(got), err, dumpAll(want))
	}
	if &got[0].Tags[0] != &a.tags[0] || &got[1].Fields[0] != &a.fields[len(p.Fields)] {
		t.Fatal("the points' tags and fields are not in the arena")
	}
	dst := make([]Point, 0, 2)
	without := testing.AllocsPerRun(100, func() { dst, _ = Decoder{}.DecodeLine(dst[:0], two) })
	with := testing.AllocsPerRun(100, func() {
		a.Reset()
		dst, _ = d.DecodeLine(dst[:0], two)
	})
	if with != without-2 {
		t.Fatalf("%v allocs/op with an arena, %v without: want two fewer", with, without)
	}
}

// parseTimestamp agrees with strconv.ParseInt, bounds and signs included,
// and stops at the space after the timestamp.
func TestParseTimestampMatchesParseInt(t *testing.T) {
	for _, s := range []string{"0", "-0", "1", "-1", "9223372036854775807", "9223372036854775808", "-9223372036854775808", "-9223372036854775809",
		"99999999999999999999", "1700000000000000000", "", "-", "1a", "+1", "0001", "18446744073709551615", "18446744073709551616"} {
		got, end, ok := parseTimestamp(s+" \n", 0)
		want, err := strconv.ParseInt(s, 10, 64)
		wantOK := err == nil && s != "" && s[0] != '+'
		if ok != wantOK || (ok && got != want) || end != len(s) {
			t.Errorf("parseTimestamp(%q) = %d, %d, %v; want %d, %d, %v", s, got, end, ok, want, len(s), wantOK)
		}
	}
}

func TestAppendLine(t *testing.T) {
	f := func(p Point, want string) {
		t.Helper()
		if got := string(AppendLine(nil, &p)); got != want {
			t.Errorf("AppendLine(%s) = %q, want %q", dump(p), got, want)
		}
	}
	f(Point{Measurement: "cpu", Fields: []Field{{"v", 1}}}, "cpu v=1\n")
	f(samplePoint(), "cpu,cpu=cpu-total,host=web-01.example.com,region=eu-west-1 usage_user=12.345,usage_system=3.25,usage_idle=84.405,n=3 1700000000123456789\n")
	f(Point{Measurement: "c p,u=", Tags: []Tag{{"k e=y,", "v a=l,"}}, Fields: []Field{{"f i=e,", math.Copysign(0, -1)}}, Time: -1},
		`c\ p\,u=,k\ e\=y\,=v\ a\=l\, f\ i\=e\,=-0 -1`+"\n")
	f(Point{Measurement: `a\b`, Tags: []Tag{{`k\,`, `\ `}}, Fields: []Field{{`\=x`, 1e21}}}, `a\b,k\\,=\\  \\=x=1e+21`+"\n")
	f(Point{Measurement: "m", Fields: []Field{{"a", math.MaxFloat64}, {"b", 5e-324}, {"c", 123456789}, {"d", 0.1}}},
		"m a=1.7976931348623157e+308,b=5e-324,c=1.23456789e+08,d=0.1\n")
	unsorted := samplePoint()
	slices.Reverse(unsorted.Tags)
	f(unsorted, string(AppendLine(nil, new(samplePoint())))) // tags written sorted
	sp := samplePoint()
	if got := string(AppendLines([]byte("x\n"), []Point{sp, {Measurement: "m", Fields: []Field{{"v", 2}}}})); got != "x\n"+string(AppendLine(nil, &sp))+"m v=2\n" {
		t.Errorf("AppendLines = %q", got)
	}
}

func BenchmarkAppendLine(b *testing.B) {
	p := samplePoint()
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendLine(buf[:0], &p)
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkDecodeLine(b *testing.B) {
	p := samplePoint()
	one := AppendLine(nil, &p)
	var batch []byte
	for range 100 {
		batch = AppendLine(batch, &p)
	}
	for _, bc := range []struct {
		name    string
		payload []byte
		arena   bool
	}{
		{"point", one, false}, {"batch100", batch, false},
		// What the consumer decodes: one short point per message, aliased,
		// into an arena reset per batch of messages.
		{"consumer", []byte("bench,host=h12 v=1.234567e+06 1795684103115000000\n"), true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			dst := make([]Point, 0, 100)
			d := Decoder{}
			if bc.arena {
				d = Decoder{Alias: true, Arena: &Arena{}}
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.payload)))
			for i := 0; b.Loop(); i++ {
				if bc.arena && i%5000 == 0 {
					d.Arena.Reset()
				}
				var err error
				if dst, err = d.DecodeLine(dst[:0], bc.payload); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// parseDecimal gives the bits strconv.ParseFloat gives for every input it
// accepts, and leaves the others to it; and it accepts most of them.
func TestParseDecimalMatchesParseFloat(t *testing.T) {
	cases := []string{"0", "-0", "0.", ".5", "-.5", "1.", "007", "123456789012345", "-999999999999999", "0.000000000000001",
		"9007199254740993", "1234567890123456", "1.2.3", "-", ".", "--1", "1_0", "+1", "0x10", " 1",
		"1e5", "1E+22", "1e23", "1.5e-22", "1e-23", "2.999999e+06", "-5e-324", "1e", "1e+", "1e-", "1e1.5", "e5", ".e1", "1e+006"}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		b := make([]byte, 0, 20)
		if rng.IntN(2) == 0 {
			b = append(b, '-')
		}
		n := 1 + rng.IntN(17)
		dot := rng.IntN(n + 2)
		for i := range n {
			if i == dot {
				b = append(b, '.')
			}
			b = append(b, byte('0'+rng.IntN(10)))
		}
		if rng.IntN(2) == 0 {
			b = strconv.AppendInt(append(b, 'e'), int64(rng.IntN(60)-30), 10)
		}
		cases = append(cases, string(b))
	}
	accepted := 0
	for _, s := range cases {
		got, ok := parseDecimal(s)
		if !ok {
			continue
		}
		accepted++
		want, err := strconv.ParseFloat(s, 64)
		if err != nil || math.Float64bits(got) != math.Float64bits(want) {
			t.Errorf("parseDecimal(%q) = %v (%#x); ParseFloat: %v (%#x), %v", s, got, math.Float64bits(got), want, math.Float64bits(want), err)
		}
	}
	if accepted < len(cases)/2 {
		t.Errorf("parseDecimal accepted %d of %d inputs: the fast path is not taken", accepted, len(cases))
	}
}
