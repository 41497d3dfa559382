#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Make the local debian:bookworm-slim base image that deploy/Dockerfile and
# deploy/prometheus/Dockerfile start FROM, on a machine where no registry is reachable: build a
# minimal Debian 12 root with mmdebstrap and `podman import` it under the name the Dockerfiles
# use. Idempotent and fast when the image is there (one `podman image exists`); the tarball is
# cached (default build/container-cache/bookworm-minbase.tar) so a removed image comes back in
# seconds. Usage: deploy/container-base.sh [--print-env]
#   --print-env  print `export CONTAINERS_CONF=...` for this machine's podman and exit
# Environment: SHOAL_BASE_CACHE (tarball cache dir), SHOAL_BASE_MIRROR (Debian mirror URL),
# CONTAINERS_CONF (defaults to deploy/containers.conf: runc, cgroupfs, netavark, ulimits).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
export CONTAINERS_CONF=${CONTAINERS_CONF:-$here/containers.conf}
if [ "${1:-}" = "--print-env" ]; then
    echo "export CONTAINERS_CONF=$CONTAINERS_CONF"
    exit 0
fi
image=docker.io/library/debian:bookworm-slim
cache=${SHOAL_BASE_CACHE:-$root/build/container-cache}
tarball=$cache/bookworm-minbase.tar
partial=$cache/partial-bookworm-minbase.tar # mmdebstrap picks the format from the extension

for tool in podman mmdebstrap; do
    command -v "$tool" >/dev/null || {
        echo "$0: $tool is not installed (deploy/install-deps.sh test installs it)" >&2
        exit 1
    }
done
if podman image exists "$image"; then
    exit 0
fi
if [ ! -s "$tarball" ]; then
    mkdir -p "$cache"
    echo "$0: building a Debian 12 minbase root with mmdebstrap (1-3 minutes)" >&2
    # Like the official slim image: no docs, man pages or locales, no apt lists or caches.
    # shellcheck disable=SC2016 # $1 is for mmdebstrap's hook shell (the root directory)
    mmdebstrap --variant=minbase --quiet \
        --dpkgopt='path-exclude=/usr/share/man/*' \
        --dpkgopt='path-exclude=/usr/share/doc/*' \
        --dpkgopt='path-include=/usr/share/doc/*/copyright' \
        --dpkgopt='path-exclude=/usr/share/locale/*' \
        --dpkgopt='path-exclude=/usr/share/info/*' \
        --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin' \
        bookworm "$partial" ${SHOAL_BASE_MIRROR:+"$SHOAL_BASE_MIRROR"}
    mv "$partial" "$tarball"
fi
podman import --quiet --change 'CMD ["bash"]' "$tarball" "$image" >/dev/null
podman image exists "$image"
echo "$0: imported $image from $tarball" >&2
