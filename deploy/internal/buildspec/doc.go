// Package buildspec reads what the project's build files say about how the
// binaries are built: the instructions of a Dockerfile, the variables and
// recipes of the Makefile, and the `go build` command lines in both, so a
// test can check that the images and `make build` build the same main
// packages with the same linker flags. It reads the files only; it runs
// nothing.
package buildspec
