package render

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"

	"github.com/flotilla-cd/flotilla/hub/internal/renderproc"
)

// This file runs Helm, Kustomize and Jsonnet renders in worker processes
// (package renderproc): a template, build or evaluation cannot be
// interrupted once started, a worker can be killed. Plain directories
// render in-process: they check ctx between files.

// workerAnswer is a worker's answer to an Input.
type workerAnswer struct {
	// Objects are the rendered objects in canonical order, as JSON.
	Objects []json.RawMessage `json:"objects,omitempty"`
	// Error is the render error, if any (wrapping ErrRender).
	Error string `json:"error,omitempty"`
	// Wraps names the sentinels Error wraps besides ErrRender (see
	// sentinels).
	Wraps []string `json:"wraps,omitempty"`
}

// ServeWorker is the main loop of a render worker process (the hub binary
// run with renderproc.WorkerArg): it renders each Input it is sent.
// It renders with e (package render/engines).
func ServeWorker(ctx context.Context, e Engines) error {
	return renderproc.Serve(ctx, func(ctx context.Context, req []byte) ([]byte, error) { return serveRender(ctx, e, req) })
}

func serveRender(ctx context.Context, e Engines, req []byte) ([]byte, error) {
	var in Input
	if err := json.Unmarshal(req, &in); err != nil {
		return nil, fmt.Errorf("decode render input: %w", err)
	}
	var ans workerAnswer
	objs, err := Source(ctx, e, in)
	if err != nil {
		ans.Error = err.Error()
		for name, s := range sentinels {
			if errors.Is(err, s) {
				ans.Wraps = append(ans.Wraps, name)
			}
		}
	}
	for _, o := range objs {
		js, err := json.Marshal(o.Object)
		if err != nil {
			return nil, fmt.Errorf("encode %s: %w", o.GetName(), err)
		}
		ans.Objects = append(ans.Objects, js)
	}
	return json.Marshal(ans)
}

// renderInWorker renders in, a Helm chart or kustomization (what says
// which), in a worker of pool.
func renderInWorker(ctx context.Context, pool *renderproc.Pool, in Input, what string) ([]*unstructured.Unstructured, error) {
	req, err := json.Marshal(in)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrRender, what, err)
	}
	resp, err := pool.Do(ctx, req)
	if err != nil {
		if isContextErr(err) && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w: %s: %w", ErrRender, what, err)
	}
	var ans workerAnswer
	if err := json.Unmarshal(resp, &ans); err != nil {
		return nil, fmt.Errorf("%w: %s: render worker answer: %w", ErrRender, what, err)
	}
	if ans.Error != "" {
		we := &workerError{msg: ans.Error, wraps: []error{ErrRender}}
		for _, name := range ans.Wraps {
			if s, ok := sentinels[name]; ok {
				we.wraps = append(we.wraps, s)
			}
		}
		return nil, we
	}
	out := make([]*unstructured.Unstructured, len(ans.Objects))
	for i, js := range ans.Objects {
		var m map[string]any
		if err := utiljson.Unmarshal(js, &m); err != nil {
			return nil, fmt.Errorf("%w: %s: object %d from the render worker: %w", ErrRender, what, i, err)
		}
		out[i] = &unstructured.Unstructured{Object: m}
	}
	return out, nil
}

// workerError is a render error returned by a worker: the same message,
// wrapping the same sentinels, as the render in-process would return.
type workerError struct {
	msg   string
	wraps []error
}

func (e *workerError) Error() string   { return e.msg }
func (e *workerError) Unwrap() []error { return e.wraps }

// sentinels are the errors callers may look for in a render error, by
// their name between a worker and the hub.
var sentinels = map[string]error{"outside": ErrOutsideRoot, "leftOut": ErrLeftOut, "remote": ErrRemoteDisabled, "remoteBase": ErrRemoteBase, "noEngine": ErrNoEngine}

// render renders in: in a worker of r's pool when it is a Helm chart or a
// kustomization and the Renderer has a pool, in-process otherwise (also
// when the source path itself is wrong: Source says how).
func (r *Renderer) render(ctx context.Context, in Input) ([]*unstructured.Unstructured, error) {
	if r.opts.Workers == nil {
		return Source(ctx, r.opts.Engines, in)
	}
	root, err := OpenRoot(in.Root)
	if err != nil {
		return Source(ctx, r.opts.Engines, in)
	}
	dir, err := root.Dir(in.Source.Path)
	if err != nil {
		root.Close()
		return Source(ctx, r.opts.Engines, in)
	}
	k := Detect(root, dir, in.Source)
	jsonnet := k == KindDirectory && hasJsonnet(root, dir, in.Source.Directory != nil && in.Source.Directory.Recurse)
	root.Close()
	switch {
	case k == KindHelm:
		return renderInWorker(ctx, r.opts.Workers, in, "helm chart "+dir)
	case k == KindKustomize:
		return renderInWorker(ctx, r.opts.Workers, in, "kustomize "+dir)
	case jsonnet:
		return renderInWorker(ctx, r.opts.Workers, in, "jsonnet "+dir)
	}
	return Source(ctx, r.opts.Engines, in)
}
