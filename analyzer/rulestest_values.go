package main

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// maxTestPoints bounds the points one input series expands to, so that a
// typo (1x100000000000) fails to parse instead of exhausting memory.
const maxTestPoints = 1_000_000

// seriesValue is one step of the values notation: a value or a gap.
type seriesValue struct {
	v  float64
	ok bool // false: no point at this step
}

// parseSeriesValues expands promtool's compact notation, space-separated
// segments each one or more steps:
//
//	5        one point of 5
//	1+2x3    1 3 5 7: start, then 3 more, each 2 up (a-bxn goes down)
//	5x3      5 5 5 5
//	_        no point at this step; _x3: none for 3 steps
//	stale    as _ (the analyzer has no staleness markers)
//
// Values must be finite; the expansion holds at most maxTestPoints steps.
func parseSeriesValues(s string) ([]seriesValue, error) {
	var out []seriesValue
	for _, tok := range strings.Fields(s) {
		vals, n, err := parseSegment(tok)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", tok, err)
		}
		if len(out)+n > maxTestPoints {
			return nil, fmt.Errorf("more than %d steps", maxTestPoints)
		}
		out = slices.Grow(out, n)
		for i := range n {
			if vals.ok {
				out = append(out, seriesValue{v: vals.start + vals.step*float64(i), ok: true})
			} else {
				out = append(out, seriesValue{})
			}
		}
	}
	return out, nil
}

type segment struct {
	start, step float64
	ok          bool
}

// parseSegment reads one segment and returns it with its length in steps.
func parseSegment(tok string) (segment, int, error) {
	body, count, hasX := cutLast(tok, 'x')
	n := 1
	if hasX {
		c, err := strconv.ParseUint(count, 10, 32)
		if err != nil || c > maxTestPoints {
			return segment{}, 0, fmt.Errorf("want a repeat count of 0 to %d after x", maxTestPoints)
		}
		n = int(c)
	}
	if body == "_" || body == "stale" {
		if !hasX {
			return segment{}, 1, nil
		}
		return segment{}, n, nil // _x3: three gaps, as promtool
	}
	if !hasX {
		v, err := finite(body)
		return segment{start: v, ok: true}, 1, err
	}
	// a+bxn and a-bxn; axn repeats a. A sign after an exponent's e is the
	// exponent's.
	start, step := body, "0"
	for i := 1; i < len(body); i++ {
		if (body[i] == '+' || body[i] == '-') && body[i-1] != 'e' && body[i-1] != 'E' {
			start, step = body[:i], body[i:]
			break
		}
	}
	a, err := finite(start)
	if err != nil {
		return segment{}, 0, err
	}
	b, err := finite(step)
	if err != nil {
		return segment{}, 0, err
	}
	if math.IsInf(a+b*float64(n), 0) {
		return segment{}, 0, errors.New("the values overflow")
	}
	return segment{start: a, step: b, ok: true}, n + 1, nil
}

func cutLast(s string, c byte) (before, after string, found bool) {
	if i := strings.LastIndexByte(s, c); i >= 0 {
		return s[:i], s[i+1:], true
	}
	return s, "", false
}

func finite(s string) (float64, error) {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || strings.ContainsAny(s, "_xXpP") {
		return 0, fmt.Errorf("want a finite number, got %q", s)
	}
	return v, nil
}
