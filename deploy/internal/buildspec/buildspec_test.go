package buildspec

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseDockerfile(t *testing.T) {
	const src = `# syntax=docker/dockerfile:1
ARG BASE=golang:1.26
FROM ${BASE} AS build
WORKDIR /src
# a comment
COPY --from=x go.mod go.sum ./
ENV CGO_ENABLED=0 GOOS=linux
ARG VERSION=dev
RUN go build \
    # comment inside a continuation
    -o /out/ ./cmd/a
FROM scratch
COPY --from=build /out/a /a
ENTRYPOINT ["/a", "--flag"]
`
	stages, err := ParseDockerfile(strings.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	want := []Stage{
		{Name: "build", Image: "${BASE}", Instructions: []Instruction{
			{Line: 4, Cmd: "WORKDIR", Flags: map[string]string{}, Args: []string{"/src"}},
			{Line: 6, Cmd: "COPY", Flags: map[string]string{"from": "x"}, Args: []string{"go.mod", "go.sum", "./"}},
			{Line: 7, Cmd: "ENV", Flags: map[string]string{}, Args: []string{"CGO_ENABLED=0", "GOOS=linux"}},
			{Line: 8, Cmd: "ARG", Flags: map[string]string{}, Args: []string{"VERSION=dev"}},
			{Line: 9, Cmd: "RUN", Flags: map[string]string{}, Args: []string{"go build      -o /out/ ./cmd/a"}},
		}},
		{Image: "scratch", Instructions: []Instruction{
			{Line: 13, Cmd: "COPY", Flags: map[string]string{"from": "build"}, Args: []string{"/out/a", "/a"}},
			{Line: 14, Cmd: "ENTRYPOINT", Flags: map[string]string{}, Args: []string{"/a", "--flag"}, JSON: true},
		}},
	}
	if d := cmp.Diff(want, stages); d != "" {
		t.Errorf("stages (-want +got):\n%s", d)
	}
	if d := cmp.Diff(map[string]string{"CGO_ENABLED": "0", "GOOS": "linux", "VERSION": "dev"}, stages[0].Env()); d != "" {
		t.Errorf("env (-want +got):\n%s", d)
	}
}

func TestParseDockerfileErrors(t *testing.T) {
	for name, src := range map[string]string{
		"unknown instruction": "FROM a\nCOPPY x y\n",
		"before FROM":         "RUN true\nFROM a\n",
		"no FROM":             "# nothing\n",
		"COPY one arg":        "FROM a\nCOPY x\n",
		"bad exec form":       "FROM a\nRUN [\"a\",\n",
		"dangling":            "FROM a\nRUN true \\\n",
		"FROM extra words":    "FROM a b\n",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ParseDockerfile(strings.NewReader(src))
			if !errors.Is(err, ErrSyntax) {
				t.Errorf("err = %v, want ErrSyntax", err)
			}
		})
	}
}

func TestFindGoBuilds(t *testing.T) {
	tests := []struct {
		cmd  string
		want []GoBuild
	}{
		{
			cmd: `go mod download && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X a/b.V=${VERSION}" -o /out/ ./x ./y; echo done`,
			want: []GoBuild{{Env: map[string]string{"CGO_ENABLED": "0"}, Packages: []string{"./x", "./y"},
				LDFlags: "-s -w -X a/b.V=${VERSION}", Trimpath: true, Output: "/out/"}},
		},
		{
			cmd:  `go build -ldflags='-X a=1' -o=bin/ -tags netgo ./z`,
			want: []GoBuild{{Env: map[string]string{}, Packages: []string{"./z"}, LDFlags: "-X a=1", Output: "bin/"}},
		},
		{cmd: `go test ./... && gofmt -l .`},
	}
	for _, tt := range tests {
		got, err := FindGoBuilds(tt.cmd)
		if err != nil {
			t.Fatalf("%s: %v", tt.cmd, err)
		}
		if d := cmp.Diff(tt.want, got); d != "" {
			t.Errorf("%s (-want +got):\n%s", tt.cmd, d)
		}
	}
}

func TestMakefile(t *testing.T) {
	const src = `VERSION ?= $(shell git describe --tags --always)
PKG := github.com/x/y
GO_LDFLAGS := -s -w \
	-X $(PKG)/version.Version=$(VERSION)
BINARIES = a b
BINARIES += c

.PHONY: build
build: ## build
	@mkdir -p bin
	CGO_ENABLED=0 go build -trimpath -ldflags '$(GO_LDFLAGS)' -o bin/ ./cmd/a ./cmd/b

test:
	go test ./...
`
	m, err := ParseMakefile(strings.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := m.Expand("$(GO_LDFLAGS)", "VERSION"), "-s -w -X github.com/x/y/version.Version=$(VERSION)"; got != want {
		t.Errorf("GO_LDFLAGS = %q, want %q", got, want)
	}
	if got, want := m.Vars["BINARIES"], "a b c"; got != want {
		t.Errorf("BINARIES = %q, want %q", got, want)
	}
	want := map[string][]string{
		"build": {"mkdir -p bin", "CGO_ENABLED=0 go build -trimpath -ldflags '$(GO_LDFLAGS)' -o bin/ ./cmd/a ./cmd/b"},
		"test":  {"go test ./..."},
	}
	if d := cmp.Diff(want, m.Recipes); d != "" {
		t.Errorf("recipes (-want +got):\n%s", d)
	}
}

func TestNormalizeVars(t *testing.T) {
	for in, want := range map[string]string{
		"V=${VERSION}":   "V=$(VERSION)",
		"V=$VERSION x":   "V=$(VERSION) x",
		"V=$(VERSION)":   "V=$(VERSION)",
		"cost $ 5":       "cost $ 5",
		"${A}${B_2}-$C1": "$(A)$(B_2)-$(C1)",
	} {
		if got := NormalizeVars(in); got != want {
			t.Errorf("NormalizeVars(%q) = %q, want %q", in, got, want)
		}
	}
}
