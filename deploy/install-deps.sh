#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Install the Debian packages shoal builds and tests with. Idempotent: does nothing when every
# package is already installed. Usage: deploy/install-deps.sh [build|cluster|test]
#   build: what compiling needs; cluster: that and redis-server; test: everything the tests need
set -euo pipefail
build_pkgs=(build-essential cmake pkg-config libsodium-dev libzmq3-dev libczmq-dev libhiredis-dev
            libmsgpack-dev libmicrohttpd-dev libjansson-dev libinih-dev)
test_pkgs=(libcmocka-dev clang libclang-rt-14-dev clang-format python3 redis-server redis-sentinel opentracker
           aria2 transmission-cli python3-libtorrent mktorrent iproute2 procps util-linux prometheus curl systemd
           podman runc netavark aardvark-dns iptables podman-compose docker-compose mmdebstrap yamllint
           haproxy spiped)
pkgs=("${build_pkgs[@]}")
case "${1:-build}" in
build) ;;
cluster) pkgs+=(redis-server) ;;
test) pkgs+=("${test_pkgs[@]}") ;;
*)
    echo "usage: $0 [build|cluster|test]" >&2
    exit 2
    ;;
esac

missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing: ${missing[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
