package bench

import (
	"context"
	_ "embed" // the profiling overlay
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/flotilla-cd/flotilla/internal/testsupport/harness"
)

// profileSrc is added to the hub's and agent's main packages in the
// profiling build (go build -overlay), so that the benchmark can take CPU
// and heap profiles of the very processes it measures without a change to
// their source.
//
//go:embed overlay/profile.go.txt
var profileSrc []byte

// profile is one profile taken during a phase.
type profile struct {
	name string // file name under profDir
	heap bool
}

// buildProfiled builds flotilla-hub and flotilla-agent with the profiling
// overlay, and flotilla-render (the hub's workers, started from next to
// flotilla-hub) from the same source, into a folder that links every
// other binary of BinDir, and switches the run to it.
func (b *Bench) buildProfiled(ctx context.Context) error {
	root, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := filepath.Dir(strings.TrimSpace(string(root)))
	dir := filepath.Join(b.work, "bin-profiled")
	b.profDir = filepath.Join(b.work, "profiles")
	for _, d := range []string{dir, b.profDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	src := filepath.Join(b.work, "zz_bench_profile.go")
	if err := os.WriteFile(src, profileSrc, 0o644); err != nil {
		return err
	}
	ov, err := json.Marshal(map[string]map[string]string{"Replace": {
		filepath.Join(mod, "hub/cmd/flotilla-hub/zz_bench_profile.go"):     src,
		filepath.Join(mod, "agent/cmd/flotilla-agent/zz_bench_profile.go"): src,
	}})
	if err != nil {
		return err
	}
	ovPath := filepath.Join(b.work, "overlay.json")
	if err := os.WriteFile(ovPath, ov, 0o644); err != nil {
		return err
	}
	b.logf("building flotilla-hub and flotilla-agent with the profiling overlay, and flotilla-render")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-overlay", ovPath, "-o", dir+"/", "./hub/cmd/flotilla-hub", "./hub/cmd/flotilla-render", "./agent/cmd/flotilla-agent")
	cmd.Dir = mod
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("profiling build: %w: %s", err, out)
	}
	entries, err := os.ReadDir(b.cfg.BinDir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.IsDir() || e.Name() == "flotilla-hub" || e.Name() == "flotilla-render" || e.Name() == "flotilla-agent" {
			continue
		}
		if err := os.Symlink(filepath.Join(b.cfg.BinDir, e.Name()), filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	b.cfg.BinDir = dir
	return os.Setenv("BENCH_PROFILE_DIR", b.profDir)
}

func (b *Bench) profAddr(p *harness.Proc) (string, error) {
	var addr string
	err := harness.Eventually(context.Background(), 10*time.Second, 50*time.Millisecond, func() error {
		raw, err := os.ReadFile(filepath.Join(b.profDir, fmt.Sprintf("%d.addr", p.PID())))
		if err != nil {
			return err
		}
		addr = string(raw)
		return nil
	})
	return addr, err
}

func (b *Bench) profCall(ctx context.Context, p *harness.Proc, path, file string) error {
	addr, err := b.profAddr(p)
	if err != nil {
		return fmt.Errorf("profile endpoint of %s: %w", p.Name, err)
	}
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+addr+path+"?file="+url.QueryEscape(file), nil)
	if err != nil {
		return err
	}
	resp, err := simClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s of %s: HTTP %d: %s", path, p.Name, resp.StatusCode, msg)
	}
	return nil
}

// cpuProfile starts a CPU profile of p for the rows named and returns the
// function that stops it. Without profiling it does nothing.
func (b *Bench) cpuProfile(ctx context.Context, p *harness.Proc, name string, rows ...string) func() {
	if b.profDir == "" {
		return func() {}
	}
	file := filepath.Join(b.profDir, name+".cpu.pb.gz")
	if err := b.profCall(ctx, p, "/cpu/start", file); err != nil {
		b.logf("CPU profile %s not taken: %v", name, err)
		return func() {}
	}
	return func() {
		if err := b.profCall(context.WithoutCancel(ctx), p, "/cpu/stop", file); err != nil {
			b.logf("CPU profile %s: %v", name, err)
			return
		}
		b.attach(profile{name: name + ".cpu.pb.gz"}, rows...)
	}
}

// heapProfile writes a heap profile of p for the rows named.
func (b *Bench) heapProfile(ctx context.Context, p *harness.Proc, name string, rows ...string) {
	if b.profDir == "" {
		return
	}
	file := filepath.Join(b.profDir, name+".heap.pb.gz")
	if err := b.profCall(ctx, p, "/heap", file); err != nil {
		b.logf("heap profile %s not taken: %v", name, err)
		return
	}
	b.attach(profile{name: name + ".heap.pb.gz", heap: true}, rows...)
}

func (b *Bench) attach(p profile, rows ...string) {
	if b.profiles == nil {
		b.profiles = map[string][]profile{}
	}
	for _, r := range rows {
		b.profiles[r] = append(b.profiles[r], p)
	}
}

// profileSection renders the top of every profile attached to a missed
// row and copies the profiles next to the document (outDir).
func (b *Bench) profileSection(ctx context.Context, outDir string) string {
	var sb strings.Builder
	for _, r := range b.rows {
		if r.Verdict != "MISSED" || len(b.profiles[r.ID]) == 0 {
			continue
		}
		fmt.Fprintf(&sb, "### %s\n\nMeasured %s against %s.\n\n", r.Figure, r.Measured, r.Goal)
		for _, p := range b.profiles[r.ID] {
			src := filepath.Join(b.profDir, p.name)
			args := []string{"tool", "pprof", "-top", "-cum", "-nodecount=30"}
			kind := "CPU"
			if p.heap {
				args = append(args, "-sample_index=inuse_space")
				kind = "heap (in use)"
			}
			out, err := exec.CommandContext(ctx, "go", append(args, src)...).Output()
			if err != nil {
				fmt.Fprintf(&sb, "%s profile %s: go tool pprof failed: %v\n\n", kind, p.name, err)
				continue
			}
			where := p.name
			if outDir != "" {
				if raw, err := os.ReadFile(src); err == nil && os.MkdirAll(outDir, 0o755) == nil &&
					os.WriteFile(filepath.Join(outDir, p.name), raw, 0o644) == nil {
					where = filepath.Join(filepath.Base(outDir), p.name)
				}
			}
			fmt.Fprintf(&sb, "%s profile `%s` (`go tool pprof -top -cum`):\n\n```\n%s```\n\n", kind, where, trimTop(string(out)))
		}
	}
	return sb.String()
}

// trimTop drops pprof's header lines about the file and build.
func trimTop(s string) string {
	var keep []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, "File:") || strings.HasPrefix(l, "Build ID:") {
			continue
		}
		keep = append(keep, l)
	}
	return strings.Join(keep, "\n")
}

// apiServerCPUProfile takes a CPU profile of a test cluster's API server
// (its /debug/pprof, on by default) over the next window, for the rows
// named, and returns the function that waits for it. Without profiling it
// does nothing.
func (b *Bench) apiServerCPUProfile(ctx context.Context, cs kubernetes.Interface, window time.Duration, name string, rows ...string) func() {
	if b.profDir == "" {
		return func() {}
	}
	done := make(chan struct{})
	taken := false
	go func() {
		defer close(done)
		raw, err := cs.Discovery().RESTClient().Get().AbsPath("/debug/pprof/profile").
			Param("seconds", strconv.Itoa(int(window.Seconds()))).Timeout(window + time.Minute).DoRaw(ctx)
		if err != nil {
			b.logf("API server CPU profile %s not taken: %v", name, err)
			return
		}
		if err := os.WriteFile(filepath.Join(b.profDir, name+".cpu.pb.gz"), raw, 0o644); err != nil {
			b.logf("API server CPU profile %s: %v", name, err)
			return
		}
		taken = true
	}()
	return func() {
		<-done
		if taken {
			b.attach(profile{name: name + ".cpu.pb.gz"}, rows...)
		}
	}
}
