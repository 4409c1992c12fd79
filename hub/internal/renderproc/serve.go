package renderproc

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// WorkerArg is the hidden first argument that makes the flotilla-render
// binary a render worker (see Serve).
const WorkerArg = "__flotilla-render-worker"

// ChartWorkerArg is the hidden first argument that makes the
// flotilla-render binary a chart worker: it fetches charts from Helm
// repositories for the hub (network, writes to the chart cache).
const ChartWorkerArg = "__flotilla-chart-worker"

// configEnv carries a worker's workerConfig, as JSON.
const configEnv = "FLOTILLA_RENDER_WORKER_CONFIG"

// exitCPU is a worker's exit status when it ran out of CPU time.
const exitCPU = 3

// statusTooLarge answers a request whose answer is over MaxOutput; the
// payload is the answer's size in decimal.
const statusTooLarge byte = 2

// workerConfig is what a worker applies to itself before it reads a
// request.
type workerConfig struct {
	CPUSeconds uint64   `json:"cpuSeconds"`
	Memory     uint64   `json:"memory"`
	Files      uint64   `json:"files"`
	MaxOutput  int64    `json:"maxOutput"`
	ReadDirs   []string `json:"readDirs"`
}

// hello is a worker's first frame: what confinement it applied.
type hello struct {
	// Landlock is the Landlock ABI version enforced (0: none).
	Landlock int `json:"landlock"`
	// LandlockError says why Landlock is not enforced, if it is not.
	LandlockError string `json:"landlockError,omitempty"`
}

// Handler answers one request in a worker. An error is sent back as a
// RemoteError; an answer over MaxOutput as a LimitError.
type Handler func(ctx context.Context, req []byte) ([]byte, error)

// Serve is a worker's main loop: it applies the limits and confinement the
// pool asked for, then answers requests from stdin on stdout, one at a
// time, until stdin ends (nil) or fails. It is meant to run in a process
// started by a Pool, never in the hub itself.
func Serve(ctx context.Context, h Handler) error {
	var cfg workerConfig
	if err := json.Unmarshal([]byte(os.Getenv(configEnv)), &cfg); err != nil {
		return fmt.Errorf("render worker: %s: %w", configEnv, err)
	}
	if err := setLimits(cfg); err != nil {
		return fmt.Errorf("render worker: %w", err)
	}
	// Load the local time zone now: after Landlock, /etc/localtime is
	// out of reach.
	_, _ = time.Now().Local().Zone()
	var hi hello
	hi.Landlock, hi.LandlockError = confine(cfg.ReadDirs)

	xcpu := make(chan os.Signal, 1)
	signal.Notify(xcpu, syscall.SIGXCPU)
	go func() {
		<-xcpu
		os.Exit(exitCPU)
	}()

	out := bufio.NewWriterSize(os.Stdout, 64<<10)
	in := bufio.NewReaderSize(os.Stdin, 64<<10)
	js, _ := json.Marshal(hi)
	if err := writeFrame(out, statusOK, js); err != nil {
		return err
	}
	if err := out.Flush(); err != nil {
		return err
	}
	for {
		_, req, err := readFrame(in, cfg.MaxOutput)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("render worker: read request: %w", err)
		}
		if err := limitCPU(cfg.CPUSeconds); err != nil {
			return fmt.Errorf("render worker: %w", err)
		}
		resp, err := h(ctx, req)
		switch {
		case err != nil:
			err = writeFrame(out, statusError, []byte(err.Error()))
		case int64(len(resp)) > cfg.MaxOutput:
			err = writeFrame(out, statusTooLarge, fmt.Appendf(nil, "%d", len(resp)))
		default:
			err = writeFrame(out, statusOK, resp)
		}
		if err == nil {
			err = out.Flush()
		}
		if err != nil {
			return fmt.Errorf("render worker: write answer: %w", err)
		}
	}
}
