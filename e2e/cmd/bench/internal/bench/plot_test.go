package bench

import (
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestWritePlot(t *testing.T) {
	pts := []CurvePoint{
		{Clusters: 10000, Simulated: true, P50: 2640 * time.Millisecond, P99: 2830 * time.Millisecond, N: 5},
		{Clusters: 1, P50: 152 * time.Millisecond, P99: 165 * time.Millisecond, N: 20},
		{Clusters: 10, P50: 301 * time.Millisecond, P99: 404 * time.Millisecond, N: 20},
		{Clusters: 100, Simulated: true, P50: 180 * time.Millisecond, P99: 250 * time.Millisecond, N: 20},
		{Clusters: 1000, Simulated: true, P50: 216 * time.Millisecond, P99: 314 * time.Millisecond, N: 20},
	}
	path := filepath.Join(t.TempDir(), PlotFile)
	if err := WritePlot(path, pts); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// A well-formed XML document whose root is <svg>; collect its text.
	dec := xml.NewDecoder(f)
	var root string
	var texts []string
	inText := false
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s is not well-formed XML: %v", path, err)
		}
		switch tk := tok.(type) {
		case xml.StartElement:
			if root == "" {
				root = tk.Name.Local
			}
			inText = tk.Name.Local == "text"
		case xml.CharData:
			if inText {
				texts = append(texts, strings.TrimSpace(string(tk)))
			}
		case xml.EndElement:
			inText = false
		}
	}
	if root != "svg" {
		t.Fatalf("root element %q, want svg", root)
	}
	var legend []string
	for _, s := range texts {
		if s == "p50" || s == "p99" {
			legend = append(legend, s)
		}
	}
	if diff := cmp.Diff([]string{"p50", "p99"}, legend); diff != "" {
		t.Errorf("legend entries (-want +got):\n%s", diff)
	}
	// Both series are drawn: p50 solid, p99 dashed (one line each plus
	// the legend's sample).
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(string(b), "stroke-dasharray:4,3"); got != 2 {
		t.Errorf("%d dashed paths (p99 line and its legend sample), want 2", got)
	}
	// Log x axis: the decade ticks of 1 … 10,000 are labelled.
	for _, want := range []string{"1", "10", "100", "1000", "10000"} {
		if !slices.Contains(texts, want) {
			t.Errorf("no x tick label %q in %q", want, texts)
		}
	}
}

func TestWritePlotNoPoints(t *testing.T) {
	if err := WritePlot(filepath.Join(t.TempDir(), PlotFile), nil); err == nil {
		t.Fatal("WritePlot with no points: no error")
	}
}
