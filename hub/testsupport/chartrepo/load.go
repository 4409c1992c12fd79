package chartrepo

import (
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
)

func loadDir(dir string) (*chart.Chart, error) { return loader.LoadDir(dir) }
