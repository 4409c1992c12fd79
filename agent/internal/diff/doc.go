// Package diff decides whether a live object has drifted from what the agent
// applied, and renders the difference for people.
//
// The agent compares the result of a server-side dry-run apply of the desired
// object with the live object, so server defaults and normalisation never
// count as drift; both sides go through Normalize first, which drops what no
// user sets (status, resourceVersion, managedFields and the like), and then
// through the app's ignoreDifferences rules. Fingerprint gives a cheap hash
// of the normalised live object so that watch events which touch nothing the
// agent compares (status updates) cost no API request.
//
// Everything here is a pure function of its inputs.
package diff
