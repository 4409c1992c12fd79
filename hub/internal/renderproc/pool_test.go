//go:build !unit

package renderproc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
)

// workerEnv makes the test binary a worker serving testHandler.
const workerEnv = "RENDERPROC_TEST_WORKER=1"

func TestMain(m *testing.M) {
	if os.Getenv("RENDERPROC_TEST_WORKER") == "1" {
		if err := Serve(context.Background(), testHandler); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// sink keeps what the memory bomb allocates reachable.
var sink [][]byte

// testHandler does what a request says: "echo:<text>", "spin" (endless
// loop), "alloc" (allocates until it dies), "dial:<addr>", "read:<file>",
// "big:<bytes>", "fail:<message>".
func testHandler(_ context.Context, req []byte) ([]byte, error) {
	cmd, arg, _ := strings.Cut(string(req), ":")
	switch cmd {
	case "echo":
		return []byte(arg), nil
	case "spin":
		n := 0
		for {
			n++
		}
	case "alloc":
		for {
			b := make([]byte, 1<<20)
			for i := range b {
				b[i] = 1
			}
			sink = append(sink, b)
		}
	case "dial":
		c, err := net.DialTimeout("tcp", arg, 5*time.Second)
		if err != nil {
			return nil, err
		}
		c.Close()
		return []byte("connected"), nil
	case "read":
		return os.ReadFile(arg)
	case "big":
		n, err := strconv.Atoi(arg)
		if err != nil {
			return nil, err
		}
		return make([]byte, n), nil
	case "fail":
		return nil, errors.New(arg)
	}
	return nil, fmt.Errorf("unknown request %q", req)
}

// testPool returns a pool of test-binary workers, closed when t ends.
func testPool(t *testing.T, edit func(*Options)) *Pool {
	t.Helper()
	o := DefaultOptions()
	o.Command = []string{os.Args[0]}
	o.Env = []string{workerEnv}
	o.Timeout = 5 * time.Second
	if edit != nil {
		edit(&o)
	}
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	p := New(o, nil)
	t.Cleanup(p.Close)
	return p
}

func TestDoAnswersAndReusesWorkers(t *testing.T) {
	p := testPool(t, nil)
	for i := range 3 {
		got, err := p.Do(t.Context(), fmt.Appendf(nil, "echo:hello %d", i))
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("hello %d", i); string(got) != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
	_, err := p.Do(t.Context(), []byte("fail:chart x is broken"))
	var re *RemoteError
	if !errors.As(err, &re) || re.Msg != "chart x is broken" {
		t.Errorf("got %v, want the handler's error", err)
	}
}

func TestEndlessRequestKilledAtDeadline(t *testing.T) {
	p := testPool(t, func(o *Options) { o.Timeout = 500 * time.Millisecond })
	_, err := p.Do(t.Context(), []byte("spin"))
	var le *LimitError
	if !errors.As(err, &le) || le.Limit != "time" {
		t.Fatalf("got %v, want the time limit", err)
	}
	if !strings.Contains(err.Error(), "--render-timeout") || !strings.Contains(err.Error(), "500ms") {
		t.Errorf("%q does not name the limit", err)
	}
	// The next request gets a new worker.
	if got, err := p.Do(t.Context(), []byte("echo:after")); err != nil || string(got) != "after" {
		t.Errorf("after the kill: %q, %v", got, err)
	}
}

func TestEndlessRequestStoppedByCPULimit(t *testing.T) {
	p := testPool(t, func(o *Options) { o.Timeout = time.Minute; o.CPU = time.Second })
	_, err := p.Do(t.Context(), []byte("spin"))
	var le *LimitError
	if !errors.As(err, &le) || le.Limit != "cpu" {
		t.Fatalf("got %v, want the CPU limit", err)
	}
}

func TestCancelKillsWorker(t *testing.T) {
	p := testPool(t, func(o *Options) { o.Timeout = time.Minute })
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if _, err := p.Do(ctx, []byte("spin")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want the context's error", err)
	}
}

func TestMemoryBombDiesOnMemoryLimit(t *testing.T) {
	p := testPool(t, func(o *Options) { o.Timeout = time.Minute; o.Memory = resource.MustParse("256Mi") })
	_, err := p.Do(t.Context(), []byte("alloc"))
	var le *LimitError
	if !errors.As(err, &le) || le.Limit != "memory" {
		t.Fatalf("got %v, want the memory limit", err)
	}
	if !strings.Contains(err.Error(), "256Mi") || !strings.Contains(err.Error(), "--render-memory-limit") {
		t.Errorf("%q does not name the limit", err)
	}
}

func TestOutputCapped(t *testing.T) {
	p := testPool(t, func(o *Options) { o.MaxOutput = resource.MustParse("1Mi") })
	_, err := p.Do(t.Context(), []byte("big:2000000"))
	var le *LimitError
	if !errors.As(err, &le) || le.Limit != "output" || !strings.Contains(err.Error(), "--render-max-output") {
		t.Fatalf("got %v, want the output limit", err)
	}
	if got, err := p.Do(t.Context(), []byte("big:1000")); err != nil || len(got) != 1000 {
		t.Errorf("a small answer: %d bytes, %v", len(got), err)
	}
}

func TestIdleWorkersExit(t *testing.T) {
	p := testPool(t, func(o *Options) { o.IdleTimeout = 100 * time.Millisecond })
	if _, err := p.Do(t.Context(), []byte("echo:x")); err != nil {
		t.Fatal(err)
	}
	w := <-p.idle
	p.idle <- w
	select {
	case <-w.exited:
	case <-time.After(10 * time.Second):
		t.Fatal("the idle worker did not exit")
	}
	if got, err := p.Do(t.Context(), []byte("echo:again")); err != nil || string(got) != "again" {
		t.Errorf("after the idle exit: %q, %v", got, err)
	}
}

// TestNoNetwork: a worker cannot connect to a listener of the test on
// loopback (its own network namespace, or Landlock ABI 4 and later).
func TestNoNetwork(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	for _, tt := range []struct {
		name string
		edit func(*Options)
		ok   func(Confinement) bool
	}{
		{"namespace", func(o *Options) {}, func(c Confinement) bool { return c.Namespaces }},
		{"landlock", func(o *Options) { o.NoNamespaces = true; o.ReadDirs = []string{t.TempDir()} }, func(c Confinement) bool { return c.Landlock >= 4 }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := testPool(t, tt.edit)
			c, err := p.Probe(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if !tt.ok(c) {
				t.Skipf("not available here: %+v", c)
			}
			got, err := p.Do(t.Context(), []byte("dial:"+l.Addr().String()))
			if err == nil {
				t.Fatalf("the worker connected to %s: %q", l.Addr(), got)
			}
			t.Logf("dial refused: %v", err)
		})
	}
}

// TestReadsConfined: with Landlock, a worker reads under ReadDirs only.
func TestReadsConfined(t *testing.T) {
	allowed, outside := t.TempDir(), t.TempDir()
	for _, f := range []string{filepath.Join(allowed, "in.yaml"), filepath.Join(outside, "secret")} {
		if err := os.WriteFile(f, []byte("data of "+filepath.Base(f)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p := testPool(t, func(o *Options) { o.ReadDirs = []string{allowed} })
	c, err := p.Probe(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if c.Landlock == 0 {
		t.Skip("no Landlock here")
	}
	if got, err := p.Do(t.Context(), []byte("read:"+filepath.Join(allowed, "in.yaml"))); err != nil || string(got) != "data of in.yaml" {
		t.Errorf("inside: %q, %v", got, err)
	}
	for _, f := range []string{filepath.Join(outside, "secret"), "/proc/self/environ", "/etc/passwd"} {
		if got, err := p.Do(t.Context(), []byte("read:"+f)); err == nil {
			t.Errorf("read %s: %q", f, got)
		}
	}
}

// TestSmallestMemoryLimitStarts: the Go runtime starts and serves under
// the smallest memory limit Validate accepts (RLIMIT_DATA counts only
// writable mappings, not the address space Go reserves; but with cgo, as
// this test binary has, each thread's 8 MiB stack counts: the hub is built
// without cgo and starts under 64Mi).
func TestSmallestMemoryLimitStarts(t *testing.T) {
	p := testPool(t, func(o *Options) { o.Memory = resource.MustParse("128Mi") })
	if got, err := p.Do(t.Context(), []byte("echo:small")); err != nil || string(got) != "small" {
		t.Fatalf("got %q, %v", got, err)
	}
}
