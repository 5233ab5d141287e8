package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/metricpipe/metricpipe/shared/point"
)

// The memory a chunk of line protocol costs to decode and hand to Kafka, by
// what it holds. chunkCost adds them up; the figures are upper bounds for
// valid line protocol, so that a request's share of --max-inflight-bytes
// bounds its memory whatever its lines look like.
const (
	// costPerLine: the decoded point.Point (72 bytes), its span in
	// client.Producer.SendBatch (24), and the receive time the encoder
	// appends to a line without one (20 bytes, in a buffer that doubles
	// as it grows: 60), rounded up.
	costPerLine = 192
	// costPerEq: every tag or field has an '=', and costs a point.Tag (32
	// bytes) or point.Field (24) in the decoder's arena, whose arrays
	// double as they grow.
	costPerEq = 64
	// costPerByte: the line re-encoded for Kafka in SendBatch's buffer,
	// which doubles as it grows (up to three copies at once), and slack.
	costPerByte = 4
)

// chunkCost returns the estimated memory to decode and send text (see the
// cost constants) and the newlines in it. Two byte counts: a small share of
// the time decoding takes.
func chunkCost(text []byte) (cost, newlines int) {
	newlines = bytes.Count(text, []byte{'\n'})
	lines := newlines
	if len(text) > 0 && text[len(text)-1] != '\n' {
		lines++
	}
	return costPerByte*len(text) + costPerLine*lines + costPerEq*bytes.Count(text, []byte{'='}), newlines
}

var (
	// errBodyTooLarge: the body, decompressed, is over its limit.
	errBodyTooLarge = errors.New("body too large")
	// errLineTooLarge: one line (or a point whose string fields span
	// lines) does not fit the text buffer, or its decoding does not fit
	// the request's share of the budget.
	errLineTooLarge = errors.New("line too large")
)

// lineChunker reads a body into a bounded buffer and hands it out in chunks
// of whole lines whose cost fits a bound. It is not safe for concurrent
// use.
type lineChunker struct {
	r          io.Reader
	buf        []byte // buf[start:end] was read and not handed out
	start, end int
	max        int   // the largest buf grows to: the longest line
	limit      int64 // the most bytes r may yield
	read       int64
	eof        bool
	// extend > 0 asks for a chunk longer than extend: the last one ended
	// inside a string field (see giveBack).
	extend int
}

// next returns the next chunk and the newlines in it: whole lines from where
// the previous chunk ended (the body's last line may lack its newline), as
// many as the buffer holds and maxCost allows. It returns io.EOF after the
// last chunk, errBodyTooLarge once the body yields more than limit bytes,
// errLineTooLarge when not even one line fits, or r's error. The chunk
// is valid until the next call.
func (c *lineChunker) next(maxCost int) ([]byte, int, error) {
	if err := c.fill(); err != nil {
		return nil, 0, err
	}
	data := c.buf[c.start:c.end]
	if len(data) == 0 {
		return nil, 0, io.EOF
	}
	n := len(data)
	if !c.eof {
		if n = bytes.LastIndexByte(data, '\n') + 1; n <= c.extend {
			return nil, 0, errLineTooLarge // the buffer is full
		}
	}
	cost, newlines := chunkCost(data[:n])
	for cost > maxCost {
		// Cut at a newline in proportion, shrinking by at least a 16th
		// a step: a couple of steps for uneven lines, few for any.
		target := min(int(int64(n)*int64(maxCost)/int64(cost)), n-n/16-1)
		m := bytes.LastIndexByte(data[:max(target, 0)], '\n') + 1
		if m > c.extend {
			n = m
			cost, newlines = chunkCost(data[:n])
			continue
		}
		// The shortest chunk allowed: through the first newline past extend.
		if i := bytes.IndexByte(data[c.extend:n], '\n'); i >= 0 {
			n = c.extend + i + 1
		}
		if cost, newlines = chunkCost(data[:n]); cost > maxCost {
			return nil, 0, errLineTooLarge
		}
	}
	c.start += n
	c.extend = 0
	return data[:n], newlines, nil
}

// fill moves what was not handed out to the front of the buffer and reads
// until the buffer, grown to max at most, is full or the body ends.
func (c *lineChunker) fill() error {
	if c.eof {
		return nil
	}
	if c.start > 0 {
		c.end = copy(c.buf, c.buf[c.start:c.end])
		c.start = 0
	}
	for !c.eof {
		if c.end == len(c.buf) {
			if len(c.buf) >= c.max {
				return nil
			}
			// Doubling: a small body never gets a big buffer.
			grown := make([]byte, min(c.max, max(2*len(c.buf), 4<<10)))
			copy(grown, c.buf[:c.end])
			c.buf = grown
		}
		n, err := c.r.Read(c.buf[c.end:])
		c.end += n
		if c.read += int64(n); c.read > c.limit {
			return errBodyTooLarge
		}
		if err == io.EOF {
			c.eof = true
		} else if err != nil {
			return err
		}
	}
	return nil
}

// giveBack returns the last n bytes of the chunk next returned, to be
// handed out again. extend > 0 asks for the next chunk to be longer than
// extend bytes: the whole chunk, which ended inside a string, was given
// back.
func (c *lineChunker) giveBack(n, extend int) {
	c.start -= n
	c.extend = extend
}

// done reports whether the whole body was handed out.
func (c *lineChunker) done() bool { return c.eof && c.start == c.end }

// The Reasons of the two point.DecodeErrors that mean something else for a
// chunk than for a whole body; TestDecoderReasons checks them against the
// decoder.
const (
	// reasonStringOnly: no point in the chunk, but its lines had string
	// fields. An error only if the whole body has no point.
	reasonStringOnly = "every line has only string fields"
	// reasonUnterminated: the chunk ends inside a string field, which may
	// go on in the next.
	reasonUnterminated = "unterminated string field value"
)

func hasReason(err error, sentinel error, reason string) bool {
	var de *point.DecodeError
	return errors.As(err, &de) && errors.Is(de, sentinel) && de.Reason == reason
}

// lineStream decodes a line-protocol body a chunk at a time, so that its
// memory follows the chunk, not the body: the text buffer, the chunk's
// points, and their tags and fields in an arena are reused from chunk to
// chunk. Its errors name the line and byte in the whole body, as
// point.Decoder.DecodeLine does. It is not safe for concurrent use.
type lineStream struct {
	c       lineChunker
	maxCost int
	dec     point.Decoder
	arena   point.Arena
	pts     []point.Point

	offset     int // bytes before the next chunk
	lines      int // newlines before the next chunk
	before     int // newlines before the chunk returned or failed last
	points     int // points in the chunks returned
	stringOnly *point.DecodeError
}

// newLineStream reads r, which may yield limit bytes; its buffer starts at
// buf bytes and grows to bufMax, the longest line; a chunk's cost stays
// within maxCost.
func newLineStream(r io.Reader, limit int64, buf, bufMax, maxCost int) *lineStream {
	s := &lineStream{
		c:       lineChunker{r: r, buf: make([]byte, buf), max: bufMax, limit: limit},
		maxCost: maxCost,
	}
	// Alias: the points refer to the buffer instead of a copy of each
	// chunk. The buffer is written again only once the caller is done with
	// the points (see next), and point.Decoder never keeps them.
	s.dec = point.Decoder{MaxMessageBytes: bufMax, Alias: true, Arena: &s.arena}
	return s
}

// next returns the points of the next chunk that has any, or io.EOF after
// the last. They refer to the stream's buffer and arena: the caller must be
// done with them, strings included, before it calls next again. Errors are
// a *point.DecodeError located in the whole body (ErrEmpty, or the first
// string-only line's ErrNoFields, for a body without points), or wrap
// errBodyTooLarge, errLineTooLarge or the reader's error.
func (s *lineStream) next() ([]point.Point, error) {
	for {
		s.before = s.lines
		chunk, newlines, err := s.c.next(s.maxCost)
		if err == io.EOF {
			if s.points == 0 {
				return nil, s.noPoints()
			}
			return nil, io.EOF
		}
		if errors.Is(err, errLineTooLarge) {
			return nil, fmt.Errorf("line %d: %w", s.lines+1, err)
		}
		if err != nil {
			return nil, err
		}
		s.arena.Reset()
		pts, derr := s.dec.DecodeLine(slices.Grow(s.pts[:0], newlines+1), chunk)
		whole := len(chunk)
		for derr != nil && !s.c.done() && hasReason(derr, point.ErrSyntax, reasonUnterminated) {
			// The chunk was cut inside a string field. Decode the points
			// before the one holding it, and hand that one out again with
			// what follows. A point may hold several strings that span
			// lines, hence the loop: each step cuts where the previous
			// decode found a string open.
			cut := bytes.LastIndexByte(chunk[:derr.(*point.DecodeError).Offset], '\n') + 1
			if cut == 0 {
				s.c.giveBack(len(chunk), whole)
				chunk = nil
				break
			}
			s.c.giveBack(len(chunk)-cut, 0)
			chunk = chunk[:cut]
			newlines = bytes.Count(chunk, []byte{'\n'})
			pts, derr = s.dec.DecodeLine(pts[:0], chunk)
		}
		if chunk == nil {
			continue
		}
		if derr != nil {
			var de *point.DecodeError
			switch {
			case !errors.As(derr, &de):
				return nil, derr
			case errors.Is(de, point.ErrEmpty): // blank and comment lines only
			case hasReason(de, point.ErrNoFields, reasonStringOnly):
				if s.stringOnly == nil {
					s.stringOnly = s.locate(de)
				}
			default:
				return nil, s.locate(de)
			}
		}
		s.offset += len(chunk)
		s.lines += newlines
		s.pts = pts
		if len(pts) > 0 {
			s.points += len(pts)
			return pts, nil
		}
	}
}

// linesBefore returns the lines of the body before the chunk next returned
// or failed on last: those whose points were returned before.
func (s *lineStream) linesBefore() int { return s.before }

// locate returns e, from the chunk at s.offset, located in the whole body.
func (s *lineStream) locate(e *point.DecodeError) *point.DecodeError {
	c := *e
	c.Offset += s.offset
	c.Line += s.lines
	c.Field = strings.Clone(c.Field) // it refers to the buffer
	return &c
}

// noPoints is the error for a body without points, as DecodeLine returns
// it for the whole body.
func (s *lineStream) noPoints() *point.DecodeError {
	if s.stringOnly != nil {
		return s.stringOnly
	}
	return &point.DecodeError{Format: point.FormatLine, Line: s.lines + 1, Offset: s.offset, Err: point.ErrEmpty}
}
