package render

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/flotilla-cd/flotilla/hub/internal/app"
	"github.com/flotilla-cd/flotilla/hub/internal/renderproc"
)

// WorkerEngines returns the Engines of a hub that links neither Helm nor
// Kustomize: the flotilla-render workers of pool run them. Renders go to
// the pool through Options.Workers already (Helm, Kustomize and Jsonnet
// called here directly are errors wrapping ErrNoEngine); the kustomization
// checks the controller runs before a render (KustomizeCharts,
// KustomizeRemoteBases) are requests to a worker too.
func WorkerEngines(pool *renderproc.Pool) Engines {
	return &workerEngines{pool: pool, charts: map[string]chartsAnswer{}}
}

type workerEngines struct {
	pool *renderproc.Pool

	mu     sync.Mutex
	charts map[string]chartsAnswer // by root and source: checkouts do not change
}

type chartsAnswer struct {
	charts   []KustomizeChart
	inflates bool
	err      error
}

func (w *workerEngines) Helm(context.Context, *Root, string, Input) ([]Origined, error) {
	return nil, fmt.Errorf("helm chart: %w", ErrNoEngine)
}

func (w *workerEngines) Kustomize(context.Context, *Root, string, Input) ([]Origined, error) {
	return nil, fmt.Errorf("kustomize: %w", ErrNoEngine)
}

func (w *workerEngines) Jsonnet(*Root, string, *app.Jsonnet) ([]byte, error) {
	return nil, fmt.Errorf("jsonnet: %w", ErrNoEngine)
}

// check sends a kustomization check to a worker; it runs with the
// render's limits (the Engines methods take no context).
func (w *workerEngines) check(req workerRequest) (checkAnswer, error) {
	js, err := json.Marshal(req)
	if err != nil {
		return checkAnswer{}, err
	}
	resp, err := w.pool.Do(context.Background(), js)
	if err != nil {
		return checkAnswer{}, fmt.Errorf("kustomization %s: %w", req.Source.Path, err)
	}
	var ans checkAnswer
	if err := json.Unmarshal(resp, &ans); err != nil {
		return checkAnswer{}, fmt.Errorf("kustomization %s: render worker answer: %w", req.Source.Path, err)
	}
	return ans, nil
}

// KustomizeCharts asks a worker, once per checkout and source (a checkout
// never changes; errors about the worker itself are not kept).
func (w *workerEngines) KustomizeCharts(root string, src app.Source) ([]KustomizeChart, bool, error) {
	sj, _ := json.Marshal(src)
	key := root + "\x00" + string(sj)
	w.mu.Lock()
	a, ok := w.charts[key]
	w.mu.Unlock()
	if ok {
		return a.charts, a.inflates, a.err
	}
	ans, err := w.check(workerRequest{Op: opCharts, Root: root, Source: &src})
	if err != nil {
		return nil, false, err
	}
	a = chartsAnswer{charts: ans.Charts, inflates: ans.Inflates}
	if ans.Error != "" {
		a.err = &workerError{msg: ans.Error, wraps: sentinelErrors(ans.Wraps)}
	}
	w.mu.Lock()
	if len(w.charts) >= 4096 {
		clear(w.charts)
	}
	w.charts[key] = a
	w.mu.Unlock()
	return a.charts, a.inflates, a.err
}

// KustomizeRemoteBases asks a worker, which answers with the bases it
// needs looked up; they are looked up here (lookup runs in the hub: the
// checkouts are its) and sent with the next request, until the worker has
// what it needs. Lookup errors come back wrapped as lookup returned them.
func (w *workerEngines) KustomizeRemoteBases(root string, src app.Source, lookup func(RemoteBase) (string, error)) ([]RemoteBase, error) {
	req := workerRequest{Op: opRemoteBases, Root: root, Source: &src, Known: map[string]lookupAnswer{}}
	var lookupErrs []error
	for {
		ans, err := w.check(req)
		if err != nil {
			return nil, err
		}
		if len(ans.Need) == 0 {
			if ans.Error == "" {
				return ans.Bases, nil
			}
			we := &workerError{msg: ans.Error, wraps: sentinelErrors(ans.Wraps)}
			for _, i := range ans.LookupErrors {
				if i >= 0 && i < len(lookupErrs) {
					we.wraps = append(we.wraps, lookupErrs[i])
				}
			}
			return ans.Bases, we
		}
		progress := false
		for _, b := range ans.Need {
			if _, ok := req.Known[b.Key()]; ok {
				continue
			}
			progress = true
			dir, err := lookup(b)
			if err != nil {
				req.Known[b.Key()] = lookupAnswer{Error: err.Error(), Index: len(lookupErrs)}
				lookupErrs = append(lookupErrs, err)
				continue
			}
			req.Known[b.Key()] = lookupAnswer{Dir: dir}
		}
		if !progress {
			return nil, fmt.Errorf("kustomization %s: the render worker asks again for remote bases it was given", src.Path)
		}
	}
}
