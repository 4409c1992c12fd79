package renderproc

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/api/resource"
)

// Limits bound one request served by a worker.
type Limits struct {
	// Timeout is the wall-clock time a request may take (default 30s);
	// the worker is killed when it runs out.
	Timeout time.Duration
	// CPU is the processor time a request may use (default 30s;
	// RLIMIT_CPU).
	CPU time.Duration
	// Memory bounds a worker's heap (default 1Gi; RLIMIT_DATA, and 3/4 of
	// it as GOMEMLIMIT).
	Memory resource.Quantity
	// MaxOutput bounds the size of one answer (default 64Mi).
	MaxOutput resource.Quantity
	// Files bounds a worker's open file descriptors (default 256;
	// RLIMIT_NOFILE).
	Files int
}

// Options configure a Pool. Every flag can also be set from
// FLOTILLA_<FLAG>.
type Options struct {
	Limits
	// Workers bounds the worker processes alive at once (default 2).
	Workers int
	// IdleTimeout is how long an idle worker is kept (default 10s).
	IdleTimeout time.Duration
	// ReadDirs are the folders a worker may read when Landlock is
	// available (set by the hub, not a flag); everything else is
	// refused. Empty: no Landlock file rules.
	ReadDirs []string
	// Command starts a worker (default: this executable with WorkerArg).
	// The hub sets it to the flotilla-render binary; tests re-run the
	// test binary.
	Command []string
	// Env is added to a worker's otherwise empty environment (tests).
	Env []string
	// NoNamespaces skips the user and network namespaces (they are used
	// when the kernel allows them).
	NoNamespaces bool
}

// DefaultOptions returns the defaults, in one place.
func DefaultOptions() Options {
	return Options{
		Limits: Limits{
			Timeout:   30 * time.Second,
			CPU:       30 * time.Second,
			Memory:    resource.MustParse("1Gi"),
			MaxOutput: resource.MustParse("64Mi"),
			Files:     256,
		},
		Workers:     2,
		IdleTimeout: 10 * time.Second,
	}
}

// Flag names, used in errors that name a limit.
const (
	FlagTimeout   = "render-timeout"
	FlagCPU       = "render-cpu-limit"
	FlagMemory    = "render-memory-limit"
	FlagMaxOutput = "render-max-output"
)

// BindFlags registers the options on fs.
func (o *Options) BindFlags(fs *pflag.FlagSet) {
	fs.DurationVar(&o.Timeout, FlagTimeout, o.Timeout, "wall-clock time one Helm or Kustomize render may take before its worker process is killed")
	fs.DurationVar(&o.CPU, FlagCPU, o.CPU, "processor time one Helm or Kustomize render may use")
	fs.Var(quantityValue{&o.Memory}, FlagMemory, "memory of one render worker process, for example 512Mi or 2Gi")
	fs.Var(quantityValue{&o.MaxOutput}, FlagMaxOutput, "largest output of one render, for example 64Mi")
	fs.IntVar(&o.Files, "render-max-files", o.Files, "open file descriptors of one render worker process")
	fs.IntVar(&o.Workers, "render-workers", o.Workers, "render worker processes alive at once")
	fs.DurationVar(&o.IdleTimeout, "render-worker-idle", o.IdleTimeout, "how long an idle render worker process is kept")
}

// Validate checks the options.
func (o *Options) Validate() error {
	var errs []error
	if o.Timeout < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("--%s %s: must be at least 100ms", FlagTimeout, o.Timeout))
	}
	if o.CPU < time.Second {
		errs = append(errs, fmt.Errorf("--%s %s: must be at least 1s", FlagCPU, o.CPU))
	}
	if o.Memory.Value() < 128<<20 {
		errs = append(errs, fmt.Errorf("--%s %s: must be at least 128Mi", FlagMemory, o.Memory.String()))
	}
	if o.MaxOutput.Value() < 1<<20 {
		errs = append(errs, fmt.Errorf("--%s %s: must be at least 1Mi", FlagMaxOutput, o.MaxOutput.String()))
	}
	if o.Files < 16 {
		errs = append(errs, fmt.Errorf("--render-max-files %d: must be at least 16", o.Files))
	}
	if o.Workers < 1 {
		errs = append(errs, fmt.Errorf("--render-workers %d: must be at least 1", o.Workers))
	}
	if o.IdleTimeout <= 0 {
		errs = append(errs, fmt.Errorf("--render-worker-idle %s: must be positive", o.IdleTimeout))
	}
	return errors.Join(errs...)
}

// quantityValue is a pflag.Value of a resource.Quantity.
type quantityValue struct{ q *resource.Quantity }

func (v quantityValue) String() string { return v.q.String() }
func (v quantityValue) Type() string   { return "quantity" }
func (v quantityValue) Set(s string) error {
	q, err := resource.ParseQuantity(s)
	if err != nil {
		return err
	}
	*v.q = q
	return nil
}
