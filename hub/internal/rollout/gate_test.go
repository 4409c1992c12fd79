package rollout

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// promHandler answers /api/v1/query as Prometheus does, with the answer
// registered for the query.
func promHandler(t *testing.T) http.Handler {
	answers := map[string]string{
		"low":    `{"status":"success","data":{"resultType":"vector","result":[{"metric":{"job":"web"},"value":[1767322800.123,"0.01"]}]}}`,
		"high":   `{"status":"success","data":{"resultType":"vector","result":[{"metric":{"job":"web"},"value":[1767322800.123,"0.3"]}]}}`,
		"scalar": `{"status":"success","data":{"resultType":"scalar","result":[1767322800.123,"7"]}}`,
		"empty":  `{"status":"success","data":{"resultType":"vector","result":[]}}`,
		"matrix": `{"status":"success","data":{"resultType":"matrix","result":[]}}`,
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/query", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query().Get("query")
		switch q {
		case "bad(":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"status":"error","errorType":"bad_data","error":"1:5: parse error: unclosed left parenthesis"}`)
			return
		case "huge":
			fmt.Fprintf(w, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{"x":"%s"},"value":[1,"1"]}]}}`, strings.Repeat("a", MaxGateResponse))
			return
		case "hang":
			<-r.Context().Done() // never answers; the gate's timeout ends the call
			return
		}
		a, ok := answers[q]
		if !ok {
			t.Errorf("unexpected query %q", q)
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, a)
	})
	return mux
}

func TestCheckGate(t *testing.T) {
	srv := httptest.NewServer(promHandler(t))
	defer srv.Close()
	maxErr, minReq := 0.05, 5.0
	tests := []struct {
		query      string
		max, min   *float64
		wantOK     bool
		wantDetail string
	}{
		{query: "low", max: &maxErr, wantOK: true, wantDetail: "0.01"},
		{query: "high", max: &maxErr, wantDetail: "0.3 > max 0.05"},
		{query: "scalar", min: &minReq, wantOK: true, wantDetail: "7"},
		{query: "low", min: &minReq, wantDetail: "0.01 < min 5"},
		{query: "empty", max: &maxErr, wantDetail: "gate: the query returned no sample"},
		{query: "matrix", max: &maxErr, wantDetail: `result type "matrix": want vector or scalar`},
		{query: "bad(", max: &maxErr, wantDetail: "HTTP 400: query failed: bad_data: 1:5: parse error: unclosed left parenthesis"},
		{query: "huge", max: &maxErr, wantDetail: fmt.Sprintf("answer larger than %d bytes", MaxGateResponse)},
		{query: "hang", max: &maxErr, wantDetail: "context deadline exceeded"},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			// Only "hang" is meant to meet the gate's timeout; the others
			// get one no loaded machine reaches.
			timeout := time.Minute
			if tc.query == "hang" {
				timeout = 200 * time.Millisecond
			}
			g := &Gate{URL: srv.URL + "/api/v1/query?query=" + tc.query, Max: tc.max, Min: tc.min, Timeout: timeout}
			ok, detail := CheckGate(t.Context(), srv.Client(), g)
			if ok != tc.wantOK || !strings.Contains(detail, tc.wantDetail) {
				t.Errorf("CheckGate = %v, %q; want %v and a detail containing %q", ok, detail, tc.wantOK, tc.wantDetail)
			}
		})
	}
}
