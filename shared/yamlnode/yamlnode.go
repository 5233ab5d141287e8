// Package yamlnode holds the few yaml.v3 node helpers the repo's YAML
// parsers share (the rule files of package rules, the analyzer's rule
// test files): they walk yaml.Node trees themselves, to report every
// problem with its line.
package yamlnode

import (
	"strconv"

	"gopkg.in/yaml.v3"
)

// Deref follows aliases to the anchored node. yaml.v3 rejects undefined
// anchors, and an anchor's node is never itself an alias; the bound guards
// against a surprise.
func Deref(n *yaml.Node) *yaml.Node {
	for i := 0; i < 8 && n.Kind == yaml.AliasNode && n.Alias != nil; i++ {
		n = n.Alias
	}
	return n
}

// IsNull reports whether n is a null scalar (~, null or nothing).
func IsNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// Lookup returns the value of key in the mapping m, aliases followed, or
// nil.
func Lookup(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if k := Deref(m.Content[i]); k.Kind == yaml.ScalarNode && k.Value == key {
			return Deref(m.Content[i+1])
		}
	}
	return nil
}

// Describe names what a node holds, for messages.
func Describe(n *yaml.Node) string {
	switch {
	case n == nil || IsNull(n):
		return "nothing"
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	case n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str":
		return strconv.Quote(n.Value)
	case n.Kind == yaml.ScalarNode:
		return n.Value
	}
	return "something else"
}
