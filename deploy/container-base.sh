#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Make the local debian:bookworm-slim base image that deploy/Dockerfile and
# deploy/prometheus/Dockerfile start FROM, on a machine where no registry is reachable: build a
# minimal Debian 12 root with mmdebstrap and `podman import` it under the name the Dockerfiles
# use. Idempotent and fast when the image is there (one `podman image exists`); the tarball is
# cached (default build/container-cache/bookworm-minbase.tar) so a removed image comes back in
# seconds. Usage: deploy/container-base.sh [--print-env | --seed-apt-cache]
#   --print-env       print `export CONTAINERS_CONF=...` for this machine's podman and exit
#   --seed-apt-cache  link the host's .debs into the package cache, print its path and exit
# Environment: SHOAL_BASE_CACHE (tarball cache dir), SHOAL_BASE_MIRROR (Debian mirror URL),
# CONTAINERS_CONF (defaults to deploy/containers.conf: runc, cgroupfs, netavark, ulimits).
#
# Speed (a fresh CI machine builds the base once per run): the packages come from a package
# cache, build/container-cache/apt, seeded with hard links to the host's own downloaded .debs
# (the host is Debian 12 too, and deploy/install-deps.sh has just fetched most of what the
# images install), so only what the host lacks is downloaded; the same directory is the apt
# cache of the image builds (tests/container/podman-hostnet mounts it as an overlay). dpkg
# runs with force-unsafe-io: no fsync per file in a root that is thrown away on failure. The
# image keeps that setting in /etc/dpkg/dpkg.cfg.d/, as Debian's official images do.
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
apt_cache=${SHOAL_APT_CACHE:-$cache/apt}
# Link the host's downloaded packages into the cache (same file system: hard links, no copy; on
# another file system nothing is linked and apt downloads as usual).
apt_cache_seed() {
    mkdir -p "$apt_cache/partial"
    find /var/cache/apt/archives -maxdepth 1 -name '*.deb' -exec ln -f -t "$apt_cache" {} + \
        2>/dev/null || true
}
if [ "${1:-}" = "--seed-apt-cache" ]; then
    apt_cache_seed
    echo "$apt_cache"
    exit 0
fi
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
    apt_cache_seed
    echo "$0: building a Debian 12 minbase root with mmdebstrap (1-3 minutes)" >&2
    # Like the official slim image: no docs, man pages or locales, no apt lists or caches. The
    # package cache is bind-mounted over the root's /var/cache/apt/archives while it is built
    # (root mode) and never ends up in the tarball; essential/unlink is skipped so mmdebstrap
    # does not delete the cache's .debs after using them.
    # shellcheck disable=SC2016 # $1 is for mmdebstrap's hook shell (the root directory)
    cached=()
    if [ "$(id -u)" -eq 0 ]; then # the bind mount needs root mode; elsewhere apt downloads
        cached=(--mode=root --skip=essential/unlink
            --setup-hook='mkdir -p "$1"/var/cache/apt/archives'
            --setup-hook="mount -o bind '$apt_cache' \"\$1\"/var/cache/apt/archives"
            --customize-hook='umount "$1"/var/cache/apt/archives')
    fi
    mmdebstrap --variant=minbase --quiet --dpkgopt=force-unsafe-io "${cached[@]}" \
        --customize-hook='echo force-unsafe-io >"$1"/etc/dpkg/dpkg.cfg.d/unsafe-io' \
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
