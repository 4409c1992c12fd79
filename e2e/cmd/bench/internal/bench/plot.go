package bench

import (
	"fmt"
	"sort"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// CurvePoint is commit (webhook) → every cluster Synced at one fleet size.
type CurvePoint struct {
	Clusters int
	// Simulated: the clusters were simulated agents (agentsim), not real
	// API servers.
	Simulated bool
	P50, P99  time.Duration
	N         int // samples
}

// PlotFile is the plot's file name, written next to the document.
const PlotFile = "bench-latency.svg"

// WritePlot draws p50 and p99 of commit → Synced against the number of
// clusters (log x axis) into an SVG file at path.
func WritePlot(path string, pts []CurvePoint) error {
	if len(pts) == 0 {
		return fmt.Errorf("plot %s: no points", path)
	}
	pts = append([]CurvePoint(nil), pts...)
	sort.Slice(pts, func(i, j int) bool { return pts[i].Clusters < pts[j].Clusters })
	p50 := make(plotter.XYs, len(pts))
	p99 := make(plotter.XYs, len(pts))
	for i, pt := range pts {
		x := float64(max(1, pt.Clusters))
		p50[i] = plotter.XY{X: x, Y: ms(pt.P50)}
		p99[i] = plotter.XY{X: x, Y: ms(pt.P99)}
	}
	p := plot.New()
	p.Title.Text = "commit (webhook) → every cluster Synced"
	p.X.Label.Text = "clusters (1 and 10: real API servers; 100 and more: simulated agents)"
	p.Y.Label.Text = "milliseconds"
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Y.Min = 0
	// Room above the highest point for the legend.
	top := 0.0
	for _, xy := range p99 {
		top = max(top, xy.Y)
	}
	p.Y.Max = top * 1.3
	p.Add(plotter.NewGrid())
	for i, s := range []struct {
		name string
		xys  plotter.XYs
		dash []vg.Length
	}{{"p50", p50, nil}, {"p99", p99, []vg.Length{vg.Points(4), vg.Points(3)}}} {
		l, sc, err := plotter.NewLinePoints(s.xys)
		if err != nil {
			return fmt.Errorf("plot %s: %s: %w", path, s.name, err)
		}
		l.Dashes = s.dash
		l.Color, sc.Color = plotutil.Color(i), plotutil.Color(i)
		p.Add(l, sc)
		p.Legend.Add(s.name, l, sc)
	}
	p.Legend.Top = true
	p.Legend.Left = true
	if err := p.Save(6*vg.Inch, 4*vg.Inch, path); err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
