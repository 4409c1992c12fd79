package deploy

import (
	"bytes"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/flotilla-cd/flotilla/deploy/internal/buildspec"
)

const (
	repoRoot     = ".."
	modulePath   = "github.com/flotilla-cd/flotilla"
	runtimeImage = "gcr.io/distroless/static-debian12:nonroot"
	nonrootUser  = "65532"
)

// image is what a Dockerfile builds, as far as the test can tell without a
// container engine.
type image struct {
	file     string
	builder  buildspec.Stage
	runtime  buildspec.Stage
	builds   []buildspec.GoBuild
	packages []string
}

func readImage(t *testing.T, file string) image {
	t.Helper()
	f, err := os.Open(filepath.Join(repoRoot, file))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	stages, err := buildspec.ParseDockerfile(f)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	if len(stages) != 2 {
		t.Fatalf("%s: %d stages, want a builder and a runtime stage", file, len(stages))
	}
	img := image{file: file, builder: stages[0], runtime: stages[1]}
	for _, in := range img.builder.Instructions {
		if in.Cmd != "RUN" {
			continue
		}
		gbs, err := buildspec.FindGoBuilds(strings.Join(in.Args, " "))
		if err != nil {
			t.Fatalf("%s line %d: %v", file, in.Line, err)
		}
		img.builds = append(img.builds, gbs...)
	}
	for _, gb := range img.builds {
		img.packages = append(img.packages, gb.Packages...)
	}
	if len(img.packages) == 0 {
		t.Fatalf("%s: no go build in the builder stage", file)
	}
	return img
}

func goVersion(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\d+)\.(\d+)`).FindStringSubmatch(string(data))
	if m == nil {
		t.Fatal("go.mod has no go directive")
	}
	return m[1] + "." + m[2]
}

// TestDockerfiles checks each image without building it: the builder uses
// the module's Go version and builds static, trimmed binaries of existing
// main packages from copied sources; the runtime stage is distroless
// nonroot, runs as 65532, and runs a binary it copied from the builder.
func TestDockerfiles(t *testing.T) {
	goVer := goVersion(t)
	for _, file := range []string{"Dockerfile.hub", "Dockerfile.agent"} {
		t.Run(file, func(t *testing.T) {
			img := readImage(t, file)
			if want := "golang:" + goVer; img.builder.Image != want {
				t.Errorf("builder image %s, want %s (go.mod's go version)", img.builder.Image, want)
			}
			env := img.builder.Env()
			var copied []string
			for _, in := range img.builder.Instructions {
				if in.Cmd != "COPY" && in.Cmd != "ADD" {
					continue
				}
				if in.Flags["from"] != "" {
					t.Errorf("line %d: builder copies from %s; want sources from the build context", in.Line, in.Flags["from"])
				}
				for _, src := range in.Args[:len(in.Args)-1] {
					if _, err := os.Stat(filepath.Join(repoRoot, src)); err != nil {
						t.Errorf("line %d: COPY source %s: %v", in.Line, src, err)
					}
					copied = append(copied, strings.TrimSuffix(path.Clean(src), "/"))
				}
			}
			var outputs []string
			for _, gb := range img.builds {
				cgo := gb.Env["CGO_ENABLED"]
				if cgo == "" {
					cgo = env["CGO_ENABLED"]
				}
				if cgo != "0" {
					t.Errorf("go build %v: CGO_ENABLED=%q, want 0 (static binary)", gb.Packages, cgo)
				}
				if !gb.Trimpath {
					t.Errorf("go build %v: no -trimpath", gb.Packages)
				}
				for _, p := range gb.Packages {
					outputs = append(outputs, path.Join(gb.Output, path.Base(p)))
				}
			}
			checkPackages(t, img.packages, copied)

			rt := img.runtime
			if rt.Image != runtimeImage {
				t.Errorf("runtime image %s, want %s", rt.Image, runtimeImage)
			}
			var user string
			var installed []string
			var entrypoint []string
			for _, in := range rt.Instructions {
				switch in.Cmd {
				case "USER":
					user = in.Args[0]
				case "COPY":
					if in.Flags["from"] != img.builder.Name {
						t.Errorf("line %d: runtime stage copies from %q, want the builder %q", in.Line, in.Flags["from"], img.builder.Name)
						continue
					}
					dst := in.Args[len(in.Args)-1]
					for _, src := range in.Args[:len(in.Args)-1] {
						if !slices.Contains(outputs, src) {
							t.Errorf("line %d: COPY %s: not a binary the builder writes (%v)", in.Line, src, outputs)
						}
						installed = append(installed, path.Join(dst, path.Base(src)))
					}
				case "ENTRYPOINT":
					entrypoint = in.Args
				case "RUN":
					t.Errorf("line %d: RUN in the distroless runtime stage (it has no shell)", in.Line)
				}
			}
			if u, _, _ := strings.Cut(user, ":"); u != nonrootUser {
				t.Errorf("runtime USER %q, want %s", user, nonrootUser)
			}
			if len(entrypoint) == 0 || !slices.Contains(installed, entrypoint[0]) {
				t.Errorf("ENTRYPOINT %v does not run an installed binary (%v)", entrypoint, installed)
			}
		})
	}
}

// checkPackages checks that every package is a main package of this module
// and that all the module's packages it imports are inside the copied
// folders (so the image build cannot miss a file that `make build` sees).
func checkPackages(t *testing.T, pkgs, copied []string) {
	t.Helper()
	args := append([]string{"list", "-deps", "-f", "{{.ImportPath}} {{.Name}} {{.Module}}"}, pkgs...)
	cmd := exec.Command("go", args...)
	cmd.Dir = repoRoot
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %v: %v\n%s", pkgs, err, stderr.String())
	}
	names := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || f[2] != modulePath {
			continue
		}
		names[f[0]] = f[1]
		rel := strings.TrimPrefix(strings.TrimPrefix(f[0], modulePath), "/")
		inside := slices.ContainsFunc(copied, func(dir string) bool {
			return dir == "." || rel == dir || strings.HasPrefix(rel, dir+"/")
		})
		if !inside {
			t.Errorf("package %s is needed but its folder is not copied into the builder (copied: %v)", f[0], copied)
		}
	}
	for _, p := range pkgs {
		imp := path.Join(modulePath, p)
		if names[imp] != "main" {
			t.Errorf("go build %s: not a main package of this module (name %q)", p, names[imp])
		}
	}
}

// TestImagesMatchMakeBuild checks that the two images together build exactly
// the main packages of `make build`, each with the Makefile's GO_LDFLAGS.
func TestImagesMatchMakeBuild(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	mk, err := buildspec.ParseMakefile(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	ldflags, ok := mk.Vars["GO_LDFLAGS"]
	if !ok {
		t.Fatal("Makefile has no GO_LDFLAGS variable")
	}
	ldflags = normFlags(mk.Expand(ldflags, "VERSION"))
	if !strings.Contains(ldflags, "-X "+modulePath+"/shared/version.Version=$(VERSION)") {
		t.Errorf("GO_LDFLAGS %q does not set shared/version.Version from VERSION", ldflags)
	}
	var makePkgs []string
	for _, line := range mk.Recipes["build"] {
		gbs, err := buildspec.FindGoBuilds(mk.Expand(line, "VERSION"))
		if err != nil {
			t.Fatalf("Makefile build: %v", err)
		}
		for _, gb := range gbs {
			if got := normFlags(gb.LDFlags); got != ldflags {
				t.Errorf("make build: -ldflags %q, want GO_LDFLAGS %q", got, ldflags)
			}
			makePkgs = append(makePkgs, gb.Packages...)
		}
	}
	if len(makePkgs) == 0 {
		t.Fatal("Makefile: the build target runs no go build")
	}
	if bins, ok := mk.Vars["BINARIES"]; ok {
		var want []string
		for _, p := range makePkgs {
			want = append(want, path.Base(p))
		}
		got := strings.Fields(mk.Expand(bins))
		for i, b := range got {
			got[i] = path.Base(b)
		}
		if d := cmp.Diff(sorted(want), sorted(got)); d != "" {
			t.Errorf("BINARIES and the packages make build builds differ (-built +BINARIES):\n%s", d)
		}
	}

	var imagePkgs []string
	for _, file := range []string{"Dockerfile.hub", "Dockerfile.agent"} {
		img := readImage(t, file)
		for _, gb := range img.builds {
			if got := normFlags(buildspec.NormalizeVars(gb.LDFlags)); got != ldflags {
				t.Errorf("%s: go build %v -ldflags %q, want the Makefile's GO_LDFLAGS %q", file, gb.Packages, got, ldflags)
			}
		}
		imagePkgs = append(imagePkgs, img.packages...)
	}
	if d := cmp.Diff(sorted(cleanPkgs(makePkgs)), sorted(cleanPkgs(imagePkgs))); d != "" {
		t.Errorf("make build and the images build different packages (-make +images):\n%s", d)
	}
}

func normFlags(s string) string { return strings.Join(strings.Fields(s), " ") }

func cleanPkgs(pkgs []string) []string {
	out := make([]string, len(pkgs))
	for i, p := range pkgs {
		out[i] = "./" + path.Clean(strings.TrimPrefix(p, modulePath+"/"))
	}
	return out
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
