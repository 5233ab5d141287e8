package kafkaio

import (
	"slices"
	"strings"

	"github.com/segmentio/kafka-go"
)

// singleOwner assigns every partition to one member of the group, the one
// with the lowest member id, and none to the others: a handler that must
// see the whole topic (incidents correlate alerts of every partition) runs
// once per group, and moves to another member when its owner leaves.
type singleOwner struct{}

func (singleOwner) ProtocolName() string      { return "metricpipe-single-owner" }
func (singleOwner) UserData() ([]byte, error) { return nil, nil }

func (singleOwner) AssignGroups(members []kafka.GroupMember, partitions []kafka.Partition) kafka.GroupMemberAssignments {
	out := kafka.GroupMemberAssignments{}
	if len(members) == 0 {
		return out
	}
	for _, m := range members {
		out[m.ID] = map[string][]int{}
	}
	owner := slices.MinFunc(members, func(a, b kafka.GroupMember) int { return strings.Compare(a.ID, b.ID) }).ID
	for _, p := range partitions {
		out[owner][p.Topic] = append(out[owner][p.Topic], p.ID)
	}
	for _, ids := range out[owner] {
		slices.Sort(ids)
	}
	return out
}
