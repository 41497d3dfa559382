#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Profile the cluster (1 shoal-gateway + 1 shoal-node) against standalone shoal, one core each
# side, as docs/profile-cluster.md reports it: where each request's CPU goes, per role and thread.
#
#   tests/bench/profile/run.sh BUILD OUT [--modes udp,http] [--window S] [--repeat N] [PASS...]
#     BUILD  a RelWithDebInfo build with shoal, shoal-gateway, shoal-node and shoal-load:
#              cmake -S . -B build/prof -DCMAKE_BUILD_TYPE=RelWithDebInfo
#              cmake --build build/prof -j2 --target shoal shoal-gateway shoal-node shoal-load
#     OUT    output directory (created; one subdirectory per run, a summary file per pass)
#     PASS   any of (default: all, in this order)
#       perf       perf record, cluster and standalone, each mode, N times (prof.py --perf);
#                  then ana.py (CPU per thread per request, batch sizes) -> OUT/perf-ana.txt and
#                  agg.py (component tables, ns per request) -> OUT/perf-MODE.md
#       sysc       syscall and context-switch counts per thread (prof.py --sysc), once per
#                  scenario and mode; then sysc.py -> OUT/sysc.txt
#       callgrind  each role in turn under callgrind (cg.sh): UDP closed loop, UDP at 4000/s,
#                  HTTP at 3000/s; then cgsum.py -> OUT/callgrind.txt (about 7 min for all nine)
#       sysbench   the cost of getpid, poll and an eventfd write+read here -> OUT/sysbench.txt
#       zmqfloor   one round trip between two processes on core 0: ZeroMQ (tcp, ipc) against a
#                  plain TCP connection, 6,000 and 600 bytes -> OUT/zmqfloor.txt
#     --modes    load modes for perf and sysc (default udp,http; http-pipe also works)
#     --window   measured seconds per perf/sysc run (default 10; each run lasts window + ~10 s)
#     --repeat   perf runs per scenario and mode (default 2, as the report)
#
# Needs perf (with syscall tracepoints: root or kernel.perf_event_paranoid <= -1), valgrind, curl,
# taskset and cc, and 2 cores: the trackers run on core 0, shoal-load and perf on core 1. Every
# process listens on 127.0.0.1 only and is stopped by its PID; every run is bounded in time.
# Each pass also runs alone, e.g. `run.sh build/prof /tmp/prof --modes udp --repeat 1 perf sysc`,
# and each tool has its own usage (prof.py --help, ana.py, agg.py, sysc.py, cg.sh, cgsum.py).
set -euo pipefail
usage() {
    awk 'NR > 2 && /^#/ { sub(/^# ?/, ""); print; next } NR > 2 { exit }' "$0"
    exit 2
}
[ $# -ge 2 ] || usage
BUILD=$(cd "$1" && pwd) OUT=$2
shift 2
MODES=udp,http WINDOW=10 REPEAT=2 PASSES=()
while [ $# -gt 0 ]; do
    case $1 in
    --modes) MODES=$2; shift 2 ;;
    --window) WINDOW=$2; shift 2 ;;
    --repeat) REPEAT=$2; shift 2 ;;
    perf | sysc | callgrind | sysbench | zmqfloor) PASSES+=("$1"); shift ;;
    *) usage ;;
    esac
done
[ ${#PASSES[@]} -gt 0 ] || PASSES=(perf sysc callgrind sysbench zmqfloor)
[[ $REPEAT =~ ^[1-9]$ ]] || { echo "--repeat: 1 to 9" >&2; exit 2; }
HERE=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3
for b in cmd/shoal cmd/shoal-gateway cmd/shoal-node tests/loadgen/shoal-load; do
    [ -x "$BUILD/$b" ] || { echo "missing $BUILD/$b: build it first (see --help)" >&2; exit 1; }
done
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
IFS=, read -r -a MODE_LIST <<<"$MODES"

pass_perf() {
    local m s i runs
    for m in "${MODE_LIST[@]}"; do
        runs=()
        for i in $(seq "$REPEAT"); do
            for s in standalone cluster; do
                $PY "$HERE/prof.py" "$BUILD" "$OUT/perf-$i-$s-$m" "$s" "$m" --perf \
                    --window "$WINDOW"
                runs+=("$OUT/perf-$i-$s-$m")
            done
        done
        $PY "$HERE/ana.py" "${runs[@]}" | tee -a "$OUT/perf-ana.txt"
        $PY "$HERE/agg.py" "$BUILD" "$m" "${runs[@]}" | tee "$OUT/perf-$m.md"
    done
}

pass_sysc() {
    local m s runs=()
    for m in "${MODE_LIST[@]}"; do
        for s in cluster standalone; do
            $PY "$HERE/prof.py" "$BUILD" "$OUT/sysc-$s-$m" "$s" "$m" --sysc --window "$WINDOW"
            runs+=("$OUT/sysc-$s-$m")
        done
    done
    $PY "$HERE/sysc.py" "${runs[@]}" | tee "$OUT/sysc.txt"
}

pass_callgrind() {
    local role spec mode rate tag fns
    fns=cmsg_encode_requests,cmsg_decode_replies,cmsg_decode_requests,cmsg_encode_replies
    fns+=,sink_write,repo_announce,repo_scrape,router_submit,router_poll,router_flush
    fns+=,connid_check,bep15_write_announce,httpresp_announce,zmq_send,zmq_msg_recv,zmq_poll
    fns+=,zmq_msg_send,zmq_msg_close
    : >"$OUT/callgrind.txt"
    for spec in udp:0:closed udp:4000:4000 http:3000:3000; do
        IFS=: read -r mode rate tag <<<"$spec"
        for role in node gateway standalone; do
            "$HERE/cg.sh" "$BUILD" "$role" "$mode" "$rate" "$OUT/cg-$role-$mode-$tag"
            $PY "$HERE/cgsum.py" "$OUT/cg-$role-$mode-$tag" "$fns" | tee -a "$OUT/callgrind.txt"
        done
    done
}

pass_sysbench() {
    cc -O2 -o "$OUT/sysbench" "$HERE/sysbench.c"
    local c
    for c in 0 1; do
        echo "core $c: $(taskset -c "$c" "$OUT/sysbench")"
    done | tee "$OUT/sysbench.txt"
}

pass_zmqfloor() {
    cc -O2 -o "$OUT/zmqfloor" "$HERE/zmqfloor.c" -lzmq
    local b
    for b in 6000 600; do
        taskset -c 0 "$OUT/zmqfloor" 20000 "$b"
    done | tee "$OUT/zmqfloor.txt"
}

for p in "${PASSES[@]}"; do
    echo "== $p"
    "pass_$p"
done
