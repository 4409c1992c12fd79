package chartsource

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/downloader"
	"helm.sh/helm/v3/pkg/getter"
	"helm.sh/helm/v3/pkg/repo"
)

// buildDependencies fetches the dependencies that the expanded chart at
// dir declares but does not carry in charts/, as `helm dependency build`
// does, with Helm's pkg/downloader: the versions of Chart.lock when the
// chart has one, else the newest matching Chart.yaml's ranges. The
// dependencies' https repositories get the hub's credentials for them
// through a repositories file of this build only (removed after it); oci://
// ones through the registry client. Requests have the Manager's deadline,
// CA bundle and size limit.
func (m *Manager) buildDependencies(ctx context.Context, dir string) error {
	ch, err := loader.LoadDir(dir)
	if err != nil {
		return fmt.Errorf("load chart: %w", err)
	}
	reqs := ch.Metadata.Dependencies
	if len(reqs) == 0 || action.CheckDependencies(ch, reqs) == nil {
		return nil // nothing declared, or every dependency vendored
	}
	work, err := os.MkdirTemp(m.opts.Dir, ".deps-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	rf := repo.NewFile()
	ociRepo := ""
	// Every credential is looked up before the first error returns: a
	// chart worker learns at once which ones to ask the hub for.
	var authErrs []error
	for i, d := range reqs {
		switch {
		case strings.HasPrefix(d.Repository, "https://"), strings.HasPrefix(d.Repository, "http://") && m.opts.AllowInsecureHTTP:
			e := &repo.Entry{Name: fmt.Sprintf("dep%d", i), URL: d.Repository}
			user, pass, ok, err := m.auth(d.Repository)
			if err != nil {
				authErrs = append(authErrs, fmt.Errorf("dependency %s: %w", d.Name, err))
				continue
			}
			if ok {
				e.Username, e.Password = user, pass
			}
			rf.Add(e)
		case IsOCI(d.Repository) && ociRepo == "":
			ociRepo = d.Repository
		}
	}
	rc, err := m.registryClient(ociRepo)
	if err := errors.Join(append(authErrs, err)...); err != nil {
		return err
	}
	repoFile := filepath.Join(work, "repositories.yaml")
	if err := rf.WriteFile(repoFile, 0o600); err != nil {
		return err
	}
	providers := getter.Providers{
		{Schemes: []string{"http", "https"}, New: func(o ...getter.Option) (getter.Getter, error) {
			return getter.NewHTTPGetter(append(o, getter.WithTransport(m.tr), getter.WithTimeout(m.opts.Timeout))...)
		}},
		{Schemes: []string{"oci"}, New: func(o ...getter.Option) (getter.Getter, error) {
			return getter.NewOCIGetter(append(o, getter.WithRegistryClient(rc), getter.WithTimeout(m.opts.Timeout))...)
		}},
	}
	dm := &downloader.Manager{
		Out:              io.Discard,
		ChartPath:        dir,
		Getters:          providers,
		RegistryClient:   rc,
		RepositoryConfig: repoFile,
		RepositoryCache:  filepath.Join(work, "cache"),
	}
	if _, err := withDeadline(ctx, func() (struct{}, error) { return struct{}{}, dm.Build() }); err != nil {
		return fmt.Errorf("dependencies of chart %s: %w", ch.Name(), err)
	}
	return nil
}
