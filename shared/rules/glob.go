package rules

import (
	"path"
	"strings"
	"unicode/utf8"
)

// glob is a validated pattern of path.Match syntax. Unlike path.Match, '*'
// and '?' also match '/': tag values are often paths (Telegraf's disk and
// mount tags: path=/var/lib), and an operator writing path: "*" means every
// path, not every path without a slash.
type glob string

// checkGlob reports whether pattern is well formed. path.Match validates the
// whole pattern even when the match fails early, and our syntax is its
// syntax, so it serves as the validator.
func checkGlob(pattern string) error {
	_, err := path.Match(pattern, "")
	return err
}

// match reports whether name matches all of g; the empty pattern matches
// everything, like "*". It does not allocate. A malformed pattern (only
// possible in a hand-built Rule) matches nothing.
func (g glob) match(name string) bool {
	pattern := string(g)
	switch {
	case pattern == "*" || pattern == "":
		return true
	case !strings.ContainsAny(pattern, `*?[\`):
		return pattern == name
	}
	// What follows is path.Match (Go's src/path/match.go, BSD licence)
	// without its special treatment of '/' and without error reporting.
Pattern:
	for len(pattern) > 0 {
		var star bool
		var chunk string
		star, chunk, pattern = scanChunk(pattern)
		if star && chunk == "" {
			return true // a trailing * matches the rest
		}
		t, ok := matchChunk(chunk, name)
		// The last chunk must exhaust the name, or a star may still match.
		if ok && (len(t) == 0 || len(pattern) > 0) {
			name = t
			continue
		}
		if star {
			for i := 0; i < len(name); i++ {
				t, ok := matchChunk(chunk, name[i+1:])
				if ok {
					if len(pattern) == 0 && len(t) > 0 {
						continue
					}
					name = t
					continue Pattern
				}
			}
		}
		return false
	}
	return len(name) == 0
}

// scanChunk returns the next segment of pattern: a run of non-star terms,
// possibly preceded by stars.
func scanChunk(pattern string) (star bool, chunk, rest string) {
	for len(pattern) > 0 && pattern[0] == '*' {
		pattern = pattern[1:]
		star = true
	}
	inrange := false
	for i := 0; i < len(pattern); i++ {
		switch pattern[i] {
		case '\\':
			if i+1 < len(pattern) {
				i++
			}
		case '[':
			inrange = true
		case ']':
			inrange = false
		case '*':
			if !inrange {
				return star, pattern[:i], pattern[i:]
			}
		}
	}
	return star, pattern, ""
}

// matchChunk reports whether chunk matches the beginning of s and returns
// the rest of s.
func matchChunk(chunk, s string) (rest string, ok bool) {
	for len(chunk) > 0 {
		if len(s) == 0 {
			return "", false
		}
		switch chunk[0] {
		case '[':
			r, n := utf8.DecodeRuneInString(s)
			s = s[n:]
			chunk = chunk[1:]
			negated := false
			if len(chunk) > 0 && chunk[0] == '^' {
				negated = true
				chunk = chunk[1:]
			}
			match := false
			nrange := 0
			for {
				if len(chunk) > 0 && chunk[0] == ']' && nrange > 0 {
					chunk = chunk[1:]
					break
				}
				var lo, hi rune
				if lo, chunk, ok = getEsc(chunk); !ok {
					return "", false
				}
				hi = lo
				if chunk[0] == '-' {
					if hi, chunk, ok = getEsc(chunk[1:]); !ok {
						return "", false
					}
				}
				match = match || lo <= r && r <= hi
				nrange++
			}
			if match == negated {
				return "", false
			}
		case '?':
			_, n := utf8.DecodeRuneInString(s)
			s = s[n:]
			chunk = chunk[1:]
		case '\\':
			chunk = chunk[1:]
			if len(chunk) == 0 {
				return "", false
			}
			fallthrough
		default:
			if chunk[0] != s[0] {
				return "", false
			}
			s = s[1:]
			chunk = chunk[1:]
		}
	}
	return s, true
}

// getEsc returns a possibly escaped character of a character class; ok is
// false when the class is malformed.
func getEsc(chunk string) (r rune, rest string, ok bool) {
	if len(chunk) == 0 || chunk[0] == '-' || chunk[0] == ']' {
		return 0, "", false
	}
	if chunk[0] == '\\' {
		chunk = chunk[1:]
		if len(chunk) == 0 {
			return 0, "", false
		}
	}
	r, n := utf8.DecodeRuneInString(chunk)
	if r == utf8.RuneError && n == 1 {
		return 0, "", false
	}
	rest = chunk[n:]
	return r, rest, len(rest) > 0
}
