#!/usr/bin/env bash
# Builds the hub and agent images from Dockerfile.hub and Dockerfile.agent
# (make images). The base images are build arguments (GO_IMAGE, BASE_IMAGE,
# with the Dockerfiles' defaults); one that is neither present nor pullable
# (no registry access) is replaced by a local stand-in made here:
#   - the Go builder: this machine's GOROOT plus a shell, cp and mkdir with
#     their shared libraries and the CA bundle, imported as flotilla-local/go;
#   - the runtime base: FROM-scratch files as distroless/static has them (CA
#     certificates, /etc/passwd with root, nonroot 65532 and nobody, /tmp,
#     /home/nonroot), imported as flotilla-local/static:nonroot.
# Source builds fetch modules from this machine's module cache (modproxy on
# loopback, so the build runs with --network host), falling back to GOPROXY.
# With PREBUILT=dir (a folder under bin/image/ holding `make build` output)
# the Dockerfiles copy those binaries instead of compiling.
#
# Environment: DOCKER GO VERSION IMAGE_REPO GO_IMAGE BASE_IMAGE PREBUILT TAG
set -euo pipefail
cd "$(dirname "$0")/../.."

DOCKER=${DOCKER:-docker}
GO=${GO:-go}
VERSION=${VERSION:-dev}
IMAGE_REPO=${IMAGE_REPO:-ghcr.io/flotilla-cd}
TAG=${TAG:-$VERSION}
GO_IMAGE=${GO_IMAGE:-golang:1.26}
BASE_IMAGE=${BASE_IMAGE:-gcr.io/distroless/static-debian12:nonroot}
PREBUILT=${PREBUILT:-}

work=$(mktemp -d)
proxy_pid=""
cleanup() {
	if [ -n "$proxy_pid" ]; then kill "$proxy_pid" 2>/dev/null || true; wait "$proxy_pid" 2>/dev/null || true; fi
	rm -rf "$work"
}
trap cleanup EXIT

# have IMAGE: present locally, or pulled now.
have() {
	"$DOCKER" image inspect "$1" >/dev/null 2>&1 && return 0
	echo "pulling $1" >&2
	"$DOCKER" pull -q "$1" >/dev/null 2>&1
}

# copy_tools ROOT TOOL...: each tool into ROOT/bin and the shared libraries
# ldd names for it at their own paths under ROOT.
copy_tools() {
	local root=$1 tool path lib; shift
	mkdir -p "$root/bin"
	for tool in "$@"; do
		path=$(command -v "$tool")
		cp -L "$path" "$root/bin/$tool"
		for lib in $(ldd "$path" | awk '{for (i = 1; i <= NF; i++) if ($i ~ /^\//) print $i}'); do
			mkdir -p "$root$(dirname "$lib")"
			cp -L "$lib" "$root$lib"
		done
	done
}

go_standin() {
	local goroot goversion ref root
	goroot=$("$GO" env GOROOT)
	goversion=$("$GO" env GOVERSION)
	ref=flotilla-local/go:${goversion#go}
	# A stand-in left by an earlier run is used when its go and shell work.
	if "$DOCKER" run --rm --network none "$ref" sh -c 'go version && cp --version && mkdir --version' >/dev/null 2>&1; then
		echo "$ref"
		return
	fi
	echo "making $ref from $goroot (no $GO_IMAGE here)" >&2
	root=$work/go-root
	mkdir -p "$root/usr/local" "$root/tmp" "$root/etc/ssl/certs" "$root/root"
	chmod 1777 "$root/tmp"
	copy_tools "$root" sh cp mkdir
	cp -L /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
	tar -C "$root" --numeric-owner -cf "$work/go.tar" .
	tar -C "$(dirname "$goroot")" --numeric-owner --owner=0 --group=0 -rf "$work/go.tar" --exclude="$(basename "$goroot")/test" \
		--transform "s,^$(basename "$goroot"),usr/local/go," "$(basename "$goroot")"
	"$DOCKER" import \
		--change 'ENV PATH=/usr/local/go/bin:/usr/local/bin:/usr/bin:/bin' \
		--change 'ENV GOTOOLCHAIN=local' \
		--change 'WORKDIR /' \
		"$work/go.tar" "$ref" >/dev/null
	"$DOCKER" run --rm --network none "$ref" sh -c 'go version' >&2
	echo "$ref"
}

static_standin() {
	local ref=flotilla-local/static:nonroot root
	if "$DOCKER" image inspect "$ref" >/dev/null 2>&1; then echo "$ref"; return; fi
	echo "making $ref (no $BASE_IMAGE here)" >&2
	root=$work/static-root
	mkdir -p "$root/etc/ssl/certs" "$root/tmp" "$root/home/nonroot" "$root/root"
	chmod 1777 "$root/tmp"
	chmod 700 "$root/root"
	cp -L /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
	printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$root/etc/passwd"
	printf 'root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n' >"$root/etc/group"
	chown 65532:65532 "$root/home/nonroot"
	tar -C "$root" --numeric-owner -cf "$work/static.tar" .
	"$DOCKER" import \
		--change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' \
		--change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
		--change 'USER 65532:65532' \
		--change 'WORKDIR /home/nonroot' \
		"$work/static.tar" "$ref" >/dev/null
	echo "$ref"
}

have "$GO_IMAGE" || GO_IMAGE=$(go_standin)
have "$BASE_IMAGE" || BASE_IMAGE=$(static_standin)

args=(--build-arg "VERSION=$VERSION" --build-arg "GO_IMAGE=$GO_IMAGE" --build-arg "BASE_IMAGE=$BASE_IMAGE")
if [ -n "$PREBUILT" ]; then
	args+=(--build-arg "PREBUILT=$PREBUILT")
else
	modcache=$("$GO" env GOMODCACHE)/cache/download
	"$GO" mod download
	"$GO" build -o "$work/modproxy" ./deploy/images/modproxy
	# The address comes through a FIFO: read returns once the proxy listens.
	mkfifo "$work/proxy-addr"
	exec 3<>"$work/proxy-addr"
	"$work/modproxy" --dir "$modcache" --addr-file "$work/proxy-addr" &
	proxy_pid=$!
	read -r -t 60 -u 3 proxy_addr || { echo "module proxy did not start" >&2; exit 1; }
	exec 3<&-
	args+=(--network host --build-arg "GOPROXY=http://$proxy_addr,$("$GO" env GOPROXY)")
fi

for img in hub agent; do
	ref=$IMAGE_REPO/flotilla-$img:$TAG
	echo "building $ref (builder $GO_IMAGE, base $BASE_IMAGE${PREBUILT:+, binaries from $PREBUILT})"
	DOCKER_BUILDKIT=0 "$DOCKER" build -f "Dockerfile.$img" "${args[@]}" -t "$ref" . >"$work/build-$img.log" 2>&1 ||
		{ cat "$work/build-$img.log" >&2; echo "docker build -f Dockerfile.$img failed" >&2; exit 1; }
	printf '%s\t%s\n' "$ref" "$("$DOCKER" image inspect -f '{{.Size}}' "$ref" | awk '{printf "%.1f MB", $1/1e6}')"
done
