package rollout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/prometheus/common/model"
)

// MaxGateResponse bounds the body of a gate's answer read.
const MaxGateResponse = 1 << 20

// promResponse is Prometheus' HTTP API envelope (/api/v1/query).
type promResponse struct {
	Status    string `json:"status"`
	ErrorType string `json:"errorType,omitempty"`
	Error     string `json:"error,omitempty"`
	Data      struct {
		ResultType model.ValueType `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	} `json:"data"`
}

// CheckGate runs one check of g: a GET of its URL within its timeout,
// the answer read up to MaxGateResponse, the first sample of the vector
// (or the scalar) compared with Max and Min. ok is false with detail
// saying why when the value is out of bounds, the query returns no
// sample, or the call fails: a gate that cannot answer does not pass.
func CheckGate(ctx context.Context, client *http.Client, g *Gate) (ok bool, detail string) {
	v, err := queryGate(ctx, client, g)
	if err != nil {
		return false, err.Error()
	}
	s := strconv.FormatFloat(v, 'g', -1, 64)
	switch {
	case g.Max != nil && v > *g.Max:
		return false, fmt.Sprintf("%s > max %s", s, strconv.FormatFloat(*g.Max, 'g', -1, 64))
	case g.Min != nil && v < *g.Min:
		return false, fmt.Sprintf("%s < min %s", s, strconv.FormatFloat(*g.Min, 'g', -1, 64))
	}
	return true, s
}

func queryGate(ctx context.Context, client *http.Client, g *Gate) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, g.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.URL, nil)
	if err != nil {
		return 0, fmt.Errorf("gate %s: %w", g.URL, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("gate: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxGateResponse+1))
	if err != nil {
		return 0, fmt.Errorf("gate %s: read answer: %w", g.URL, err)
	}
	if len(body) > MaxGateResponse {
		return 0, fmt.Errorf("gate %s: answer larger than %d bytes", g.URL, MaxGateResponse)
	}
	var pr promResponse
	if err := json.Unmarshal(body, &pr); err != nil {
		return 0, fmt.Errorf("gate %s: HTTP %d, not a Prometheus API answer: %w", g.URL, resp.StatusCode, err)
	}
	if pr.Status != "success" {
		return 0, fmt.Errorf("gate %s: HTTP %d: query failed: %s: %s", g.URL, resp.StatusCode, pr.ErrorType, pr.Error)
	}
	switch pr.Data.ResultType {
	case model.ValVector:
		var vec model.Vector
		if err := json.Unmarshal(pr.Data.Result, &vec); err != nil {
			return 0, fmt.Errorf("gate %s: vector: %w", g.URL, err)
		}
		if len(vec) == 0 {
			return 0, errors.New("gate: the query returned no sample")
		}
		return float64(vec[0].Value), nil
	case model.ValScalar:
		var sc model.Scalar
		if err := json.Unmarshal(pr.Data.Result, &sc); err != nil {
			return 0, fmt.Errorf("gate %s: scalar: %w", g.URL, err)
		}
		return float64(sc.Value), nil
	}
	return 0, fmt.Errorf("gate %s: result type %q: want vector or scalar", g.URL, pr.Data.ResultType)
}
