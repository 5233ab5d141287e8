// Package incident groups alerts into incidents and ranks each incident's
// likely origin. Alerts that start within a window of each other and share
// a grouping label value (host, service, cluster by default), or whose
// services depend on each other by declaration, form one incident. Its
// candidate origins, one per distinct set of grouping labels among its
// alerts, rank by the onset rule (a candidate whose anomaly began more than
// the lead T before every other's is the located fault), then by declared
// dependency direction, onset order and how many alerts share its labels.
//
// The Correlator is deterministic in the alert events it is fed and their
// event times, never the wall clock: replaying the alert topic rebuilds it.
package incident
