// Package agentapi serves the agent protocol (shared/api/v1alpha1) over
// gRPC: Enroll with a one-time join token, and Connect over mutual TLS, where
// the client certificate's CommonName is the cluster an agent may act for.
//
// It owns the authorization of agents; what to send them is decided by
// package fleet.
package agentapi
