#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# One command for the benchmarks from a fresh clone: installs the dependencies (opentracker
# included), builds shoal and the load generator optimised, then runs the side-by-side comparison
# with the memory benchmark, the cluster (1 gateway + 1 node) beside standalone with each cluster
# role measured alone, and the repository benchmark. Arguments go to bench.py, e.g.
#   tests/bench/run.sh --tracker-cores 0-3 --load-cores 4-7 --load-workers 4 --rounds 5
set -euo pipefail
cd "$(dirname "$0")/../.."
deploy/install-deps.sh test
cmake -S . -B build/bench -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/bench -j"$(nproc 2>/dev/null || echo 2)" \
    --target shoal shoal-load shoal-echo shoal-bench-repo shoal-gateway shoal-node shoal-node-bench
echo "== repository benchmark (2 threads)"
taskset -c 0,1 build/bench/tests/bench/shoal-bench-repo --threads 2
echo "== trackers side by side"
exec /usr/bin/python3 tests/bench/bench.py --build build/bench --memory --cluster --roles "$@"
