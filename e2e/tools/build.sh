#!/usr/bin/env bash
# build.sh BIN_DIR builds the test control-plane binaries (etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, kwok) and kubectl (which tests
# drive as users do) from this tools module into
# BIN_DIR, and the OCI registry the chart tests push to (CNCF Distribution,
# from its own module e2e/registry, as registry-<version>), but only those
# that are missing there. Versions are pinned by
# e2e/tools/go.mod; the flags below must stay as they are so that the Go build
# cache of earlier builds is reused.
set -euo pipefail

if [[ $# -ne 1 ]]; then
	echo "usage: $0 BIN_DIR" >&2
	exit 2
fi

tools_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mkdir -p "$1"
bin_dir="$(cd "$1" && pwd)"

# binary name -> package path (relative to the tools module)
declare -A pkgs=(
	[etcd]=./cmd/etcd
	[kube-apiserver]=k8s.io/kubernetes/cmd/kube-apiserver
	[kube-controller-manager]=k8s.io/kubernetes/cmd/kube-controller-manager
	[kube-scheduler]=k8s.io/kubernetes/cmd/kube-scheduler
	[kwok]=sigs.k8s.io/kwok/cmd/kwok
	[kubectl]=k8s.io/kubernetes/cmd/kubectl
)
order=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok kubectl)

# One build at a time per BIN_DIR: a second caller waits, then finds the
# binaries present.
if command -v flock >/dev/null; then
	exec 9>"$bin_dir/.build.lock"
	flock 9
fi

missing=()
names=()
for name in "${order[@]}"; do
	if [[ ! -x "$bin_dir/$name" ]]; then
		missing+=("${pkgs[$name]}")
		names+=("$name")
	fi
done

registry_mod="$tools_dir/../registry"
registry_version="$(cd "$registry_mod" && go list -m -f '{{.Version}}' github.com/distribution/distribution/v3)"
if [[ ! -x "$bin_dir/registry-$registry_version" ]]; then
	echo "build.sh: building the OCI registry $registry_version into $bin_dir (about 2 min the first time)"
	(cd "$registry_mod" && go build -trimpath -o "$bin_dir/registry-$registry_version" github.com/distribution/distribution/v3/cmd/registry)
fi

if [[ ${#missing[@]} -eq 0 ]]; then
	echo "build.sh: all control-plane binaries present in $bin_dir"
	exit 0
fi

echo "build.sh: building ${names[*]} into $bin_dir"
echo "build.sh: the first build takes about 20 min on 2 cores (later builds reuse the Go build cache)"

cd "$tools_dir"
go build -o "$bin_dir/" -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=v1.36.1 -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=36 -X k8s.io/component-base/version.gitTreeState=clean" "${missing[@]}"

echo "build.sh: done: ${names[*]}"
