# Flotilla — build, test and run.
#
#   make quickstart   a real local cluster, a hub following a git repo of example
#                     apps, an enrolled agent; the apps converge and their status is printed
#   make test         every test: unit, integration (real kube-apiserver), e2e (real processes)
#
# Both build the test control-plane binaries (etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, kwok) into bin/ on first use.

SHELL        := /usr/bin/env bash
GO           ?= go
BIN          := $(CURDIR)/bin
VERSION      ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo v0.1.0-dev)
GO_LDFLAGS   := -s -w -X github.com/flotilla-cd/flotilla/shared/version.Version=$(VERSION)
BINARIES     := ./hub/cmd/flotilla-hub ./hub/cmd/flotilla-render ./hub/cmd/flotilla ./agent/cmd/flotilla-agent
PROTOC_GEN_GO_VERSION      := v1.36.12
GOLANGCI_LINT_VERSION      := v2.15.0
PROTOC_GEN_GO_GRPC_VERSION := v1.6.2
# protoc is Debian's (Go cannot build it); the generated code names its
# version, so a different one is refused rather than silently used.
PROTOC_VERSION := 3.21.12
TEST_TIMEOUT ?= 40m
# Test binaries are linked into, and run from, GOTMPDIR; in memory (/dev/shm)
# linking them takes about half the time it takes on disk here.
GO_TEST_TMP  ?= $(shell test -d /dev/shm && test -w /dev/shm && ! findmnt -no OPTIONS /dev/shm 2>/dev/null | grep -q noexec && echo /dev/shm)
GO_TEST      := GOTMPDIR=$(GO_TEST_TMP) $(GO) test
# Debian packages the tests and tools use.
APT_PACKAGES := git protobuf-compiler chromium

export FLOTILLA_E2E_BIN_DIR := $(BIN)
export FLOTILLA_CONTROL_PLANE_BIN_DIR := $(BIN)

.PHONY: all build test test-packages containers-tier unit e2e e2e-kind e2e-containers docker-deps bins deps check-deps proto proto-check protoc-version lint quickstart bench images images-push deploy-test clean

all: build

## build: the hub (flotilla-hub and its worker binary flotilla-render), CLI and agent binaries into bin/
build:
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(GO_LDFLAGS)" -o $(BIN)/ $(BINARIES)

## deps: Debian packages that Go cannot build (apt-get, as root or with sudo; once)
deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; fi; \
	fi

## check-deps: fail, naming them, when Debian packages are missing (run `make deps`)
check-deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "missing Debian packages:$$missing; run 'make deps' (apt-get, once)" >&2; exit 1; fi

## bins: test control-plane binaries into bin/ (first build ~20 min on 2 cores, then cached)
bins:
	./e2e/tools/build.sh $(BIN)

## test: generated-code check, then lint, the packages' tests (unit,
## integration, e2e) and the container tier side by side (the tests mostly wait
## on the processes they start; lint fills the idle core); each one's output
## is printed when it ends, and any failure fails make test
test: deps docker-deps bins build proto-check
	$(MAKE) --no-print-directory -j3 --output-sync=target lint test-packages containers-tier

test-packages:
	$(GO_TEST) -count=1 -timeout $(TEST_TIMEOUT) ./...

## unit: tests that need no control plane, git server, browser or Docker.
## Test files that need one carry `//go:build !unit` (e2e/archtest
## TestUnitTierHasNoRealParts keeps it so). Vet runs in make lint, for both
## builds; the test binaries are linked without symbol tables, which halves
## their link time.
unit:
	$(GO_TEST) -count=1 -short -tags unit -vet=off -ldflags='-s -w' ./...

## e2e: the end-to-end suite only (hub and agents as processes, real clusters)
e2e: check-deps bins build
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) -v ./e2e/...

## e2e-kind: the same e2e suite on kind clusters (needs Docker and kind)
e2e-kind: build
	FLOTILLA_E2E_PROVIDER=kind $(GO) test -count=1 -timeout $(TEST_TIMEOUT) -v ./e2e/...

## proto: regenerate shared/api from its .proto with pinned generators
proto: protoc-version $(BIN)/tools/protoc-gen-go $(BIN)/tools/protoc-gen-go-grpc
	PATH=$(BIN)/tools:$$PATH protoc -I shared/api/v1alpha1 \
	  --go_out=shared/api/v1alpha1 --go_opt=paths=source_relative \
	  --go-grpc_out=shared/api/v1alpha1 --go-grpc_opt=paths=source_relative \
	  shared/api/v1alpha1/flotilla.proto

## protoc-version: the pinned protoc (PROTOC_VERSION) is the one on the PATH
protoc-version:
	@v=$$(protoc --version 2>/dev/null | awk '{print $$2}'); \
	if [ "$$v" != "$(PROTOC_VERSION)" ]; then echo "protoc $$v found, $(PROTOC_VERSION) pinned (Debian's protobuf-compiler; run make deps)" >&2; exit 1; fi

## proto-check: fail when the committed generated code is stale
proto-check: protoc-version $(BIN)/tools/protoc-gen-go $(BIN)/tools/protoc-gen-go-grpc
	@tmp=$$(mktemp -d); trap 'rm -rf $$tmp' EXIT; \
	PATH=$(BIN)/tools:$$PATH protoc -I shared/api/v1alpha1 \
	  --go_out=$$tmp --go_opt=paths=source_relative \
	  --go-grpc_out=$$tmp --go-grpc_opt=paths=source_relative \
	  shared/api/v1alpha1/flotilla.proto; \
	for f in flotilla.pb.go flotilla_grpc.pb.go; do \
	  diff -u shared/api/v1alpha1/$$f $$tmp/$$f >/dev/null || { echo "shared/api/v1alpha1/$$f is stale: run make proto"; exit 1; }; \
	done; echo "generated code is up to date"

# golangci-lint is built from the module proxy at a pinned version (its
# first build takes about 2.5 minutes on 2 cores).
$(BIN)/tools/golangci-lint:
	GOBIN=$(BIN)/tools $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)

$(BIN)/tools/protoc-gen-go:
	GOBIN=$(BIN)/tools $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)

$(BIN)/tools/protoc-gen-go-grpc:
	GOBIN=$(BIN)/tools $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)

## lint: gofmt, go vet, golangci-lint (.golangci.yml) and tidy go.mod files
lint: $(BIN)/tools/golangci-lint
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '\.pb\.go$$')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags unit ./...
	$(BIN)/tools/golangci-lint run --timeout 20m ./...
	@$(GO) mod tidy -diff >/dev/null || { echo "go.mod/go.sum are not tidy: run go mod tidy"; exit 1; }
	@cd e2e/tools && $(GO) mod tidy -diff >/dev/null || { echo "e2e/tools/go.mod is not tidy: run go mod tidy in e2e/tools"; exit 1; }
	@cd e2e/registry && $(GO) mod tidy -diff >/dev/null || { echo "e2e/registry/go.mod is not tidy: run go mod tidy in e2e/registry"; exit 1; }
	@cd e2e/oidcprovider && $(GO) mod tidy -diff >/dev/null || { echo "e2e/oidcprovider/go.mod is not tidy: run go mod tidy in e2e/oidcprovider"; exit 1; }
	@cd e2e/oidcprovider && $(GO) vet ./... && test -z "$$(gofmt -l .)" || { echo "e2e/oidcprovider: go vet or gofmt failed"; exit 1; }

## quickstart: real local cluster + hub + agent + example apps, status printed
quickstart: deps bins build
	$(GO) run ./e2e/cmd/quickstart --bin-dir $(BIN)

## bench: the benchmark harness; writes docs/benchmarks.md and docs/bench-latency.svg
bench: check-deps bins build
	$(GO) run ./e2e/cmd/bench --bin-dir $(BIN) --out docs/benchmarks.md

## ---- images and the container tier (a Docker engine; see docs/e2e.md) ----
DOCKER       ?= docker
IMAGE_REPO   ?= ghcr.io/flotilla-cd
# The Dockerfiles' base images; when one cannot be pulled, deploy/images/build.sh
# makes a local stand-in (flotilla-local/go from this machine's Go,
# flotilla-local/static:nonroot from scratch).
GO_IMAGE     ?= golang:1.26
BASE_IMAGE   ?= gcr.io/distroless/static-debian12:nonroot
# The tier's images get a tag of their own per run (the engine may be shared with
# other checkouts' runs) and are removed after it.
E2E_IMAGE_TAG := e2e-$(shell od -An -N4 -tx4 /dev/urandom | tr -d ' ')
IMAGE_ENV     = DOCKER=$(DOCKER) GO=$(GO) VERSION=$(VERSION) IMAGE_REPO=$(IMAGE_REPO) GO_IMAGE=$(GO_IMAGE) BASE_IMAGE=$(BASE_IMAGE)

## docker-deps: Debian's docker.io when no dockerd is installed (apt-get, as root)
docker-deps:
	@command -v dockerd >/dev/null 2>&1 || $(MAKE) --no-print-directory deps APT_PACKAGES=docker.io

## images: both images from Dockerfile.hub and Dockerfile.agent, compiled from source
## (starts dockerd for the build when none runs, and stops it after)
images: docker-deps
	./deploy/images/with-dockerd.sh env $(IMAGE_ENV) ./deploy/images/build.sh

images-push: images
	$(DOCKER) push $(IMAGE_REPO)/flotilla-hub:$(VERSION)
	$(DOCKER) push $(IMAGE_REPO)/flotilla-agent:$(VERSION)

## e2e-containers: the container tier: hub and agents from images built with the
## binaries of make build (PREBUILT), control planes on their own networks
e2e-containers: docker-deps bins build
	$(MAKE) --no-print-directory containers-tier

containers-tier:
	@mkdir -p $(BIN)/image && cp $(BIN)/flotilla-hub $(BIN)/flotilla-render $(BIN)/flotilla $(BIN)/flotilla-agent $(BIN)/image/
	./deploy/images/with-dockerd.sh bash -c 'set -e; \
	  $(DOCKER) network prune -f --filter label=flotilla-e2e --filter until=2h >/dev/null; \
	  trap "$(DOCKER) rmi $(IMAGE_REPO)/flotilla-hub:$(E2E_IMAGE_TAG) $(IMAGE_REPO)/flotilla-agent:$(E2E_IMAGE_TAG) >/dev/null 2>&1 || true" EXIT; \
	  env $(IMAGE_ENV) PREBUILT=bin/image TAG=$(E2E_IMAGE_TAG) ./deploy/images/build.sh; \
	  FLOTILLA_E2E_HUB_IMAGE=$(IMAGE_REPO)/flotilla-hub:$(E2E_IMAGE_TAG) \
	  FLOTILLA_E2E_AGENT_IMAGE=$(IMAGE_REPO)/flotilla-agent:$(E2E_IMAGE_TAG) FLOTILLA_DOCKER=$(DOCKER) \
	  $(GO) test -count=1 -timeout $(TEST_TIMEOUT) -v ./e2e/containers/'

## deploy-test: server dry-run of every manifest, install walks
deploy-test: check-deps bins build
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) -v ./deploy/...

clean:
	rm -f $(BIN)/flotilla-hub $(BIN)/flotilla-render $(BIN)/flotilla $(BIN)/flotilla-agent
