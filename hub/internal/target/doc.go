// Package target decides which clusters an application targets and what
// each of them gets: the effective source, after the first matching cluster
// override is merged over the application's source and the cluster's name
// and labels are templated into it. Everything here is a pure function of
// its inputs.
package target
