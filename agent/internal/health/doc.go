// Package health maps the live state of objects to Flotilla's health values
// (Healthy, Progressing, Degraded, Missing, Unknown) with kstatus, and folds
// object health into application health (the worst wins, in Argo CD's order).
//
// Everything here is a pure function of its inputs.
package health
