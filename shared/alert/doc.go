// Package alert holds what the analyzer publishes about its alerts: the
// alert event (the documented JSON on the alert topic) and the lifecycle
// that decides, per rule and series, when an alert goes pending, fires and
// resolves.
package alert
