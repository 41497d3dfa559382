#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Set up and run the standalone tracker: installs the build dependencies (Debian), builds shoal
# optimised, and runs it in the foreground on UDP and HTTP port 6969. Extra arguments go to shoal,
# e.g. deploy/standalone.sh --workers 4 --log-level debug. Stop it with Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
deploy/install-deps.sh build
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DSHOAL_TESTS=OFF >/dev/null
cmake --build build/release -j"$(nproc 2>/dev/null || echo 2)" --target shoal
exec build/release/cmd/shoal "$@"
