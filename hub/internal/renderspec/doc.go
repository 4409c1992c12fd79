// Package renderspec is the vocabulary of a render shared by the renderer
// (package render, which links Helm and Kustomize) and its callers (the
// controller, and through it the status and HTTP layers): what one render
// reads (Input, Capabilities, the charts and remote bases it is given),
// the key its result is cached by, and the check of two applications
// claiming one object. It links neither Helm nor Kustomize.
package renderspec
