package chartsource

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	"helm.sh/helm/v3/pkg/chartutil"

	"github.com/flotilla-cd/flotilla/hub/internal/chartsource/chartref"
)

// expand unpacks a chart archive into dir (the chart under dir/<name>/),
// runs prepare on the chart's folder (dependencies) and marks it complete;
// a half-written dir is replaced.
func expand(dir string, data []byte, prepare func(chartDir string) error) error {
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".expand-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := chartutil.Expand(tmp, bytes.NewReader(data)); err != nil {
		return err
	}
	name, err := ChartDir(tmp)
	if err != nil {
		return fmt.Errorf("expanded archive holds no chart folder: %w", err)
	}
	if err := prepare(filepath.Join(tmp, name)); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tmp, ".complete"), nil, 0o600); err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	return os.Rename(tmp, dir)
}

// ChartDir returns the name of the chart folder inside an expanded chart
// directory.
func ChartDir(dir string) (string, error) { return chartref.ChartDir(dir) }
