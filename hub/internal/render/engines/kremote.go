package engines

import (
	"fmt"
	"github.com/flotilla-cd/flotilla/hub/internal/render"
	"net/url"
	"path"
	"regexp"
	"strings"

	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/kio"
	kyaml "sigs.k8s.io/kustomize/kyaml/yaml"
	"sigs.k8s.io/yaml"

	"github.com/flotilla-cd/flotilla/hub/internal/gitsource"
)

// Kustomize (sigs.k8s.io/kustomize/api v0.21) fetches in two places, both
// before any file system is asked: its loader's Load GETs any path whose
// URL scheme is http or https (resources, patches, generator files and
// envs, crds, configurations, openapi, replacements and every builtin
// plugin's file), and its New clones with the git program any path its
// repository parser accepts (resources, bases, components, generators,
// transformers, validators): a scheme ssh://, https://, http:// or
// file:// (any case, optionally after "git::"), a leading "user@", or a
// leading "github.com/" or "github.com:". isRemote refuses a superset:
// those, and any "scheme://".

var (
	schemeURL = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*://`)
	userAt    = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9-]*@`)
)

// isRemote reports whether kustomize would fetch or clone ref.
func isRemote(ref string) bool {
	s := strings.TrimSpace(ref)
	if u, err := url.Parse(s); err == nil && (strings.EqualFold(u.Scheme, "http") || strings.EqualFold(u.Scheme, "https")) {
		return true
	}
	if len(s) >= 5 && strings.EqualFold(s[:5], "git::") {
		return true
	}
	lower := strings.ToLower(s)
	return schemeURL.MatchString(s) || userAt.MatchString(s) ||
		strings.HasPrefix(lower, "github.com/") || strings.HasPrefix(lower, "github.com:")
}

// checkRemote refuses, before kustomize runs, anything the kustomization
// in dir (relative to the root) and every local kustomization it refers
// to would make kustomize fetch or clone; their helmCharts are inflated
// (see inflate) or refused. Errors name
// the kustomization file and the field and wrap render.ErrRemoteDisabled.
func checkRemote(fsys *rootFS, dir string, seen map[string]bool) error {
	abs := fsys.root.Abs(dir)
	if seen[abs] {
		return nil
	}
	seen[abs] = true
	file := render.KustomizationFile(fsys.root, dir)
	if file == "" {
		return nil
	}
	data, err := fsys.root.ReadFile(file)
	if err != nil {
		return err
	}
	if rs := fsys.remote; rs != nil {
		rs.stack, rs.names = append(rs.stack, abs), append(rs.names, rs.label[fsys]+dir)
		defer func() { rs.stack, rs.names = rs.stack[:len(rs.stack)-1], rs.names[:len(rs.names)-1] }()
	}
	return checkKustomization(fsys, dir, file, data, seen)
}

// refs is a kustomization's references, by field.
type refs []struct{ field, ref string }

func (r *refs) add(field string, list ...string) {
	for _, s := range list {
		if s != "" {
			*r = append(*r, struct{ field, ref string }{field, s})
		}
	}
}

// checkKustomization checks the kustomization data of file in dir.
func checkKustomization(fsys *rootFS, dir, file string, data []byte, seen map[string]bool) error {
	var kz types.Kustomization
	if err := yaml.Unmarshal(data, &kz); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	discover := fsys.remote != nil && fsys.remote.discover
	if !discover && (len(kz.HelmCharts) > 0 || len(kz.HelmChartInflationGenerator) > 0 || kz.HelmGlobals != nil) { //nolint:staticcheck // legacy field, refused by inflate
		real, err := fsys.root.Resolve(file)
		if err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		if err := fsys.inflate(dir, real, kz); err != nil {
			return err
		}
	}
	var r refs
	r.add("resources", kz.Resources...)
	r.add("bases", kz.Bases...) //nolint:staticcheck // legacy fields still name files to confine
	r.add("components", kz.Components...)
	r.add("crds", kz.Crds...)
	r.add("configurations", kz.Configurations...)
	for i, p := range kz.Patches {
		r.add(fmt.Sprintf("patches[%d].path", i), p.Path)
	}
	for i, p := range kz.PatchesJson6902 { //nolint:staticcheck // legacy field, still read by kustomize
		r.add(fmt.Sprintf("patchesJson6902[%d].path", i), p.Path)
	}
	for _, p := range kz.PatchesStrategicMerge { //nolint:staticcheck // legacy field, still read by kustomize
		r.add("patchesStrategicMerge", string(p))
	}
	for i, p := range kz.Replacements {
		r.add(fmt.Sprintf("replacements[%d].path", i), p.Path)
	}
	if p, ok := kz.OpenAPI["path"]; ok {
		r.add("openapi.path", p)
	}
	for i, g := range kz.ConfigMapGenerator {
		addSources(&r, fmt.Sprintf("configMapGenerator[%d]", i), g.KvPairSources)
	}
	for i, g := range kz.SecretGenerator {
		addSources(&r, fmt.Sprintf("secretGenerator[%d]", i), g.KvPairSources)
	}
	for _, x := range r {
		if !isRemote(x.ref) {
			continue
		}
		if !isBaseField(x.field) {
			return remoteErr(file, x.field, x.ref)
		}
		if fsys.remote == nil {
			return remoteBaseErr(file, x.field, x.ref)
		}
		if err := fsys.remote.mount(fsys, dir, file, x.field, x.ref, seen); err != nil {
			return err
		}
	}
	if _, ok := kz.OpenAPI["path"]; ok {
		// Kustomize keeps a custom schema for the whole process: it would
		// change (or, invalid, crash) every later build of every app.
		return fmt.Errorf("%s: openapi.path: custom OpenAPI schemas are not supported (kustomize keeps one schema for all builds)", file)
	}
	for _, x := range r {
		if isRemote(x.ref) {
			continue
		}
		if !isBaseField(x.field) {
			// Kustomize reads these files through the root too; a path that
			// leaves it is named here with its field.
			if _, err := fsys.root.Resolve(path.Join(dir, x.ref)); err != nil {
				return fmt.Errorf("%s: %s: %w", file, x.field, err)
			}
			continue
		}
		sub, err := fsys.root.Resolve(path.Join(dir, x.ref))
		if err != nil {
			return fmt.Errorf("%s: %s: %w", file, x.field, err)
		}
		if fsys.IsDir(sub) {
			if err := checkRemote(fsys, sub, seen); err != nil {
				return err
			}
		}
	}
	for field, list := range map[string][]string{"generators": kz.Generators, "transformers": kz.Transformers, "validators": kz.Validators} {
		for i, entry := range list {
			if err := checkPluginEntry(fsys, dir, file, fmt.Sprintf("%s[%d]", field, i), entry); err != nil {
				return err
			}
		}
	}
	return nil
}

// addSources adds a generator's files (a "key=path" names path) and env
// files.
func addSources(r *refs, field string, s types.KvPairSources) {
	for _, f := range s.FileSources {
		r.add(field+".files", f)
		if _, p, ok := strings.Cut(f, "="); ok {
			r.add(field+".files", p)
		}
	}
	r.add(field+".envs", s.EnvSources...)
	r.add(field+".env", s.EnvSource)
}

func remoteErr(file, field, ref string) error {
	return fmt.Errorf("%s: %s: %q: %w (kustomize may read only files of the repository)", file, field, gitsource.Redact(ref), render.ErrRemoteDisabled)
}

// isBaseField reports whether a kustomization field names kustomizations
// (which may be remote bases).
func isBaseField(field string) bool {
	return field == "resources" || field == "bases" || field == "components"
}

// remoteBaseErr is the error for a remote base on a hub that has them off:
// a git repository is named with the option that turns them on; anything
// else as remote loading is.
func remoteBaseErr(file, field, ref string) error {
	if _, err := ParseRemoteBase(ref); err != nil {
		return remoteErr(file, field, ref)
	}
	return fmt.Errorf("%s: %s: %q: %w: git remote bases are off on this hub (start it with --kustomize-remote-bases)", file, field, gitsource.Redact(ref), render.ErrRemoteDisabled)
}

// pluginPathFields are the fields of kustomize's builtin generators and
// transformers that name a file kustomize loads.
var pluginPathFields = map[string]bool{
	"path": true, "paths": true, "files": true, "envs": true, "env": true,
	"targetFilePath": true, "valuesFile": true, "additionalValuesFiles": true, "chartHome": true, "repo": true,
}

// checkPluginEntry checks one generators, transformers or validators
// entry: an inline configuration, or a file of configurations. A folder is
// refused: kustomize would build it, and a built configuration can be
// given any path (by a patch or a replacement) that no check of the files
// sees.
func checkPluginEntry(fsys *rootFS, dir, file, field, entry string) error {
	var data []byte
	var inline map[string]any
	if err := yaml.Unmarshal([]byte(entry), &inline); err == nil && inline != nil {
		data = []byte(entry)
	} else {
		if isRemote(entry) {
			return remoteErr(file, field, entry)
		}
		p, err := fsys.root.Resolve(path.Join(dir, entry))
		if err != nil {
			return fmt.Errorf("%s: %s: %w", file, field, err)
		}
		if fsys.IsDir(p) {
			return fmt.Errorf("%s: %s: %q is a folder; only files and inline configurations are supported here", file, field, entry)
		}
		if data, err = fsys.ReadFile(p); err != nil {
			return fmt.Errorf("%s: %s: %w", file, field, err)
		}
	}
	nodes, err := (&kio.ByteReader{Reader: strings.NewReader(string(data)), OmitReaderAnnotations: true}).Read()
	if err != nil {
		return fmt.Errorf("%s: %s: %w", file, field, err)
	}
	for _, n := range nodes {
		if n.GetKind() == "HelmChartInflationGenerator" {
			return fmt.Errorf("%s: %s: Helm inflation in kustomize is not supported; use a Helm source", file, field)
		}
		if ref := remoteIn(n.YNode(), ""); ref != "" {
			return remoteErr(file, field+" ("+n.GetKind()+")", ref)
		}
	}
	return nil
}

// remoteIn returns the first remote reference in the path fields of the
// YAML node n (key is the field n is the value of), or "".
func remoteIn(n *kyaml.Node, key string) string {
	switch n.Kind {
	case kyaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			if ref := remoteIn(n.Content[i+1], n.Content[i].Value); ref != "" {
				return ref
			}
		}
	case kyaml.SequenceNode:
		for _, c := range n.Content {
			if ref := remoteIn(c, key); ref != "" {
				return ref
			}
		}
	case kyaml.ScalarNode:
		if !pluginPathFields[key] {
			return ""
		}
		if isRemote(n.Value) {
			return n.Value
		}
		if _, p, ok := strings.Cut(n.Value, "="); ok && isRemote(p) {
			return n.Value
		}
	}
	return ""
}
