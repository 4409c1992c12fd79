package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"k8s.io/client-go/kubernetes"
)

// writeVerbs are the verbs of apiserver_request_total that write.
var writeVerbs = map[string]bool{"POST": true, "PUT": true, "PATCH": true, "APPLY": true, "DELETE": true, "DELETECOLLECTION": true}

// writeCounts reads an API server's /metrics text and returns the write
// requests counted in apiserver_request_total so far, per "VERB resource"
// or "VERB resource/subresource", over every response code (a refused
// write, such as a conflict, was still sent).
func writeCounts(r io.Reader) (map[string]float64, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("API server metrics: %w", err)
	}
	out := map[string]float64{}
	for _, m := range fams["apiserver_request_total"].GetMetric() {
		var verb, res, sub string
		for _, l := range m.GetLabel() {
			switch l.GetName() {
			case "verb":
				verb = l.GetValue()
			case "resource":
				res = l.GetValue()
			case "subresource":
				sub = l.GetValue()
			}
		}
		if !writeVerbs[verb] {
			continue
		}
		if sub != "" {
			res += "/" + sub
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
