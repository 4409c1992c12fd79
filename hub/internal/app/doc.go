// Package app is Flotilla's application model: the Application and Cluster
// kinds (flotilla.dev/v1alpha1) as they are written in git, their decoding
// and validation, and the conversion of Argo CD's argoproj.io/v1alpha1
// Application and ApplicationSet into them.
//
// Field names follow Argo CD's Application wherever the meaning is the same.
// Everything here is a pure function of its inputs, apart from LoadDir, which
// reads a folder. Decoding never ignores a field silently: a field Flotilla
// cannot honour is either a warning (it changes policy only, such as an Argo
// CD project) or an error (it changes what would be rendered, such as a
// config management plugin). Every message names the file, the document and
// the field.
package app
