package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"k8s.io/client-go/kubernetes"
)

// writeVerbs are the verbs of apiserver_request_total that write.
var writeVerbs = map[string]bool{"POST": true, "PUT": true, "PATCH": true, "APPLY": true, "DELETE": true, "DELETECOLLECTION": true}

// writeCounts reads an API server's /metrics text and returns the write
// requests counted in apiserver_request_total so far, per "VERB resource"
// or "VERB resource/subresource", over every response code (a refused
// write, such as a conflict, was still sent); a dry-run is counted apart,
// as "VERB resource (dry-run)".
func writeCounts(r io.Reader) (map[string]float64, error) {
	return requestCounts(r, func(verb string) bool { return writeVerbs[verb] })
}

// requestCounts is writeCounts for the verbs keep accepts.
func requestCounts(r io.Reader, keep func(verb string) bool) (map[string]float64, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("API server metrics: %w", err)
	}
	out := map[string]float64{}
	for _, m := range fams["apiserver_request_total"].GetMetric() {
		var verb, res, sub, dry string
		for _, l := range m.GetLabel() {
			switch l.GetName() {
			case "verb":
				verb = l.GetValue()
			case "resource":
				res = l.GetValue()
			case "subresource":
				sub = l.GetValue()
			case "dry_run":
				dry = l.GetValue()
			}
		}
		if !keep(verb) {
			continue
		}
		if sub != "" {
			res += "/" + sub
		}
		if dry != "" {
			res += " (dry-run)"
		}
		out[verb+" "+res] += m.GetCounter().GetValue()
	}
	return out, nil
}

// apiWrites reads apiserver_request_total from the API server's /metrics
// and returns the write requests per resource (see writeCounts).
func apiWrites(ctx context.Context, cs kubernetes.Interface) (map[string]float64, error) {
	raw, err := cs.Discovery().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("API server metrics: %w", err)
	}
	return writeCounts(bytes.NewReader(raw))
}

// apiRequests is apiWrites for every verb (reads too: GET, LIST, WATCH).
func apiRequests(ctx context.Context, cs kubernetes.Interface) (map[string]float64, error) {
	raw, err := cs.Discovery().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("API server metrics: %w", err)
	}
	return requestCounts(bytes.NewReader(raw), func(string) bool { return true })
}

// requestDiff renders the growth of the counts, largest first.
func requestDiff(before, after map[string]float64) string {
	type kv struct {
		k string
		v float64
	}
	var d []kv
	for k, v := range after {
		if n := v - before[k]; n > 0 {
			d = append(d, kv{k, n})
		}
	}
	sort.Slice(d, func(i, j int) bool { return d[i].v > d[j].v })
	var parts []string
	for _, e := range d {
		parts = append(parts, fmt.Sprintf("%s: %.0f", e.k, e.v))
	}
	return strings.Join(parts, ", ")
}
