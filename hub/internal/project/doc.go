// Package project enforces projects on the hub: it compiles a Project
// definition (Flotilla's, or Argo CD's AppProject as converted by package
// app) into a Policy and checks apps against it — their source repos,
// their destinations, the kinds and namespaces of every object they
// render — and says whether sync windows let them sync now. It is a pure
// core: no I/O, the time is passed in.
package project
