package render

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"

	"github.com/flotilla-cd/flotilla/hub/internal/app"
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

// workerRequest is what the hub sends a render worker: a render (Op
// empty) or one of the checks the controller runs on a kustomization
// before it renders (opCharts, opRemoteBases).
type workerRequest struct {
	Op    string `json:"op,omitempty"`
	Input *Input `json:"input,omitempty"`
	// Root and Source name the kustomization of a check.
	Root   string      `json:"root,omitempty"`
	Source *app.Source `json:"source,omitempty"`
	// Known answers the remote bases' lookups asked for so far, by
	// RemoteBase.Key (opRemoteBases).
	Known map[string]lookupAnswer `json:"known,omitempty"`
}

// Ops of a workerRequest.
const (
	opCharts      = "kustomizeCharts"
	opRemoteBases = "kustomizeRemoteBases"
)

// lookupAnswer is the hub's answer to a remote base's lookup: its
// checkout or the error (Index names it in the hub, see remoteLookup).
type lookupAnswer struct {
	Dir   string `json:"dir,omitempty"`
	Error string `json:"error,omitempty"`
	Index int    `json:"index,omitempty"`
}

// checkAnswer is a worker's answer to a check.
type checkAnswer struct {
	Charts   []KustomizeChart `json:"charts,omitempty"`
	Inflates bool             `json:"inflates,omitempty"`
	Bases    []RemoteBase     `json:"bases,omitempty"`
	// Need lists the remote bases whose lookup the hub has not answered
	// yet: it answers them and asks again.
	Need  []RemoteBase `json:"need,omitempty"`
	Error string       `json:"error,omitempty"`
	// Wraps names the sentinels Error wraps (see sentinels).
	Wraps []string `json:"wraps,omitempty"`
	// LookupErrors are the Index of the lookup errors Error wraps.
	LookupErrors []int `json:"lookupErrors,omitempty"`
}

// ServeWorker is the main loop of a render worker process (the
// flotilla-render binary run with renderproc.WorkerArg): it renders each
// Input it is sent and answers the kustomization checks.
// It renders with e (package render/engines).
func ServeWorker(ctx context.Context, e Engines) error {
	return renderproc.Serve(ctx, func(ctx context.Context, req []byte) ([]byte, error) { return serveRequest(ctx, e, req) })
}

func serveRequest(ctx context.Context, e Engines, req []byte) ([]byte, error) {
	var wr workerRequest
	if err := json.Unmarshal(req, &wr); err != nil {
		return nil, fmt.Errorf("decode render worker request: %w", err)
	}
	switch wr.Op {
	case "":
		if wr.Input == nil {
			return nil, errors.New("render worker request without an input")
		}
		return serveRender(ctx, e, *wr.Input)
	case opCharts, opRemoteBases:
		if wr.Source == nil {
			return nil, fmt.Errorf("render worker request %s without a source", wr.Op)
		}
		return json.Marshal(serveCheck(e, wr))
	}
	return nil, fmt.Errorf("render worker request: unknown op %q", wr.Op)
}

// errNeedLookup ends a remote bases check at a base the hub has not
// looked up yet.
var errNeedLookup = errors.New("remote base not looked up yet")

// lookupError is a lookup error the hub answered, sent back by index.
type lookupError struct {
	msg   string
	index int
}

func (e *lookupError) Error() string { return e.msg }

func serveCheck(e Engines, wr workerRequest) checkAnswer {
	var ans checkAnswer
	var err error
	if wr.Op == opCharts {
		ans.Charts, ans.Inflates, err = e.KustomizeCharts(wr.Root, *wr.Source)
	} else {
		lookup := func(b RemoteBase) (string, error) {
			a, ok := wr.Known[b.Key()]
			switch {
			case !ok:
				ans.Need = append(ans.Need, b)
				return "", errNeedLookup
			case a.Error != "":
				return "", &lookupError{msg: a.Error, index: a.Index}
			}
			return a.Dir, nil
		}
		ans.Bases, err = e.KustomizeRemoteBases(wr.Root, *wr.Source, lookup)
	}
	if len(ans.Need) > 0 {
		return checkAnswer{Need: ans.Need}
	}
	if err != nil {
		ans.Error = err.Error()
		ans.Wraps = sentinelNames(err)
		ans.LookupErrors = lookupIndexes(err)
	}
	return ans
}

// lookupIndexes returns the indexes of the lookupErrors in err's tree.
func lookupIndexes(err error) []int {
	var out []int
	var walk func(error)
	walk = func(err error) {
		if le, ok := err.(*lookupError); ok {
			out = append(out, le.index)
			return
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			if w := u.Unwrap(); w != nil {
				walk(w)
			}
		case interface{ Unwrap() []error }:
			for _, w := range u.Unwrap() {
				walk(w)
			}
		}
	}
	walk(err)
	return out
}

func serveRender(ctx context.Context, e Engines, in Input) ([]byte, error) {
	var ans workerAnswer
	objs, err := Source(ctx, e, in)
	if err != nil {
		ans.Error = err.Error()
		ans.Wraps = sentinelNames(err)
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
	req, err := json.Marshal(workerRequest{Input: &in})
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
		return nil, &workerError{msg: ans.Error, wraps: append([]error{ErrRender}, sentinelErrors(ans.Wraps)...)}
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

// sentinelNames names the sentinels err wraps.
func sentinelNames(err error) []string {
	var out []string
	for name, s := range sentinels {
		if errors.Is(err, s) {
			out = append(out, name)
		}
	}
	return out
}

// sentinelErrors returns the sentinels of names.
func sentinelErrors(names []string) []error {
	var out []error
	for _, name := range names {
		if s, ok := sentinels[name]; ok {
			out = append(out, s)
		}
	}
	return out
}

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
