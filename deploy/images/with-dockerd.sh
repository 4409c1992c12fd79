#!/usr/bin/env bash
# Runs a command with a Docker engine. When none answers, it starts dockerd
# (root only) for the command's duration and stops it afterwards, so that a
# machine is left as it was found. DOCKER names the CLI (default docker).
set -euo pipefail
DOCKER=${DOCKER:-docker}

engine() { "$DOCKER" version --format '{{.Server.Version}}' >/dev/null 2>&1; }

if engine; then exec "$@"; fi
if [ "$(id -u)" != 0 ]; then
	echo "no Docker engine answers, and only root can start dockerd here" >&2
	exit 1
fi
command -v dockerd >/dev/null || { echo "dockerd is not installed (make docker-deps installs docker.io)" >&2; exit 1; }
log=$(mktemp -t dockerd.XXXXXX.log)
dockerd >"$log" 2>&1 &
pid=$!
stop() {
	kill "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	rm -f "$log"
}
trap stop EXIT
echo "started dockerd (pid $pid) for this run"
deadline=$((SECONDS + 90))
until engine; do
	if ! kill -0 "$pid" 2>/dev/null || [ "$SECONDS" -ge "$deadline" ]; then
		echo "dockerd did not come up:" >&2
		tail -20 "$log" >&2
		exit 1
	fi
	sleep 0.5
done
"$@"
