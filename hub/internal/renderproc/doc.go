// Package renderproc runs work that cannot be interrupted in child processes
// of the hub that can be killed: a Helm template or a Kustomize build runs
// to its end once started, however long that takes, so the hub hands it to
// a worker process and kills the worker when it overruns.
//
// A Pool starts workers by running Options.Command: for the hub, the
// flotilla-render binary with the hidden first argument WorkerArg or
// ChartWorkerArg (Serve is that mode's main loop). Each
// worker serves one request at a time over its stdin and stdout, in frames
// of a 4-byte big-endian length and a payload; what a payload means is the
// caller's business (package render sends an input and gets objects back).
// Workers stay warm between requests and exit once idle for
// Options.IdleTimeout, so a hub at rest keeps none.
//
// Each worker runs with:
//   - a wall-clock deadline per request, after which its process group is
//     killed (also when the caller's context ends);
//   - RLIMIT_CPU per request, RLIMIT_DATA and GOMEMLIMIT for memory,
//     RLIMIT_NOFILE, RLIMIT_CORE 0, and a cap on the size of an answer;
//   - an empty environment apart from what the Go runtime needs;
//   - when the kernel lets an unprivileged process create them, its own
//     user and network namespaces: the network namespace has no interface
//     but a loopback that is down, so nothing can be reached;
//   - when the kernel has Landlock, read-only access to Options.ReadDirs
//     and nothing else on the file system, and (Landlock ABI 4 and later)
//     no TCP bind or connect.
//
// What could not be applied is logged once, as a warning, by Pool.Probe.
package renderproc
