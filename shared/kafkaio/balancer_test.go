package kafkaio

import (
	"reflect"
	"testing"

	"github.com/segmentio/kafka-go"
)

func TestSingleOwnerAssignsEverythingToOneMember(t *testing.T) {
	members := []kafka.GroupMember{{ID: "m-b"}, {ID: "m-a"}, {ID: "m-c"}}
	partitions := []kafka.Partition{{Topic: "t", ID: 2}, {Topic: "t", ID: 0}, {Topic: "t", ID: 1}}
	got := singleOwner{}.AssignGroups(members, partitions)
	want := kafka.GroupMemberAssignments{"m-a": {"t": {0, 1, 2}}, "m-b": {}, "m-c": {}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("assignments %v, want %v", got, want)
	}
	// The owner leaves: the next lowest takes everything.
	got = singleOwner{}.AssignGroups(members[:1], partitions)
	if want := (kafka.GroupMemberAssignments{"m-b": {"t": {0, 1, 2}}}); !reflect.DeepEqual(got, want) {
		t.Errorf("after the owner left: %v, want %v", got, want)
	}
}
