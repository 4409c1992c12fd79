// Package fleet holds the desired state of every cluster and the sessions of
// connected agents, and computes what each agent must be sent.
//
// It is level-triggered: a session remembers the digests its agent holds
// (from Hello, then from what was sent) and, when woken, sends exactly the
// bundles whose digest differs and the apps that no longer target the
// cluster. Wake-ups coalesce, so a burst of commits becomes one message with
// the newest state, and the newest state is never dropped.
package fleet
