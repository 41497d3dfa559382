#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# One callgrind run: ROLE under valgrind --tool=callgrind (one dump per thread), the other cluster
# role native, all tracker processes pinned to core 0 and shoal-load on core 1.
#
#   tests/bench/profile/cg.sh BUILD ROLE MODE RATE OUT
#     BUILD  build directory (RelWithDebInfo), e.g. build/prof
#     ROLE   node | gateway | standalone
#     MODE   udp | http
#     RATE   shoal-load --rate: 0 = closed loop (the valgrinded role is the bottleneck, so batches
#            are large), N = open loop at N requests/s (small batches)
#     OUT    run directory (created)
#
# The counters are zeroed 8 s into a 30 s load (callgrind_control -z) and dumped 15 s later
# (callgrind_control -d): OUT/cg.PID.1-NN are the measured window, one file per thread. /metrics
# is read at both ends (OUT/m-gw-{0,1}.txt: the gateway's, or standalone's; OUT/m-node-{0,1}.txt),
# shoal-load's output goes to OUT/load.txt. Read the result with cgsum.py OUT.
# Every process listens on 127.0.0.1 only and is stopped by its PID, also on error; the load is
# bounded by --duration and by timeout.
set -euo pipefail
if [ $# -ne 5 ]; then
    awk 'NR > 2 && /^#/ { sub(/^# ?/, ""); print; next } NR > 2 { exit }' "$0"
    exit 2
fi
BUILD=$(cd "$1" && pwd) ROLE=$2 MODE=$3 RATE=$4 OUT=$5
case $ROLE in node | gateway | standalone) ;; *) echo "ROLE: node|gateway|standalone" >&2; exit 2 ;; esac
case $MODE in udp | http) ;; *) echo "MODE: udp|http" >&2; exit 2 ;; esac
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
fp() {
    /usr/bin/python3 -c 'import sys; sys.path.insert(0, sys.argv[1]); from trackerclient import free_port; print(free_port())' \
        "$HERE/../../integration"
}
PORT=$(fp) Z=$(fp) AN=$(fp) AG=$(fp)
VG=(valgrind --tool=callgrind --separate-threads=yes "--callgrind-out-file=$OUT/cg.%p")
SECRET=$(printf 'ab%.0s' $(seq 32))
NODE=("$BUILD/cmd/shoal-node" --id n1 --bind "tcp://127.0.0.1:$Z" --nodes "n1=tcp://127.0.0.1:$Z"
    --workers 1 --log-level warn --admin "127.0.0.1:$AN")
GW=("$BUILD/cmd/shoal-gateway" --udp "127.0.0.1:$PORT" --http "127.0.0.1:$PORT"
    --nodes "n1=tcp://127.0.0.1:$Z" --workers 1 --secret "$SECRET" --log-level warn
    --admin "127.0.0.1:$AG")
PIDS=()
stop_all() {
    local p
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do
        timeout 30 tail --pid="$p" -f /dev/null || true
        kill -KILL "$p" 2>/dev/null || true
    done
    PIDS=()
}
trap stop_all EXIT
cd "$OUT"
# taskset execs valgrind, which runs the tracker in the same process: $! is the tracker's PID.
case $ROLE in
node)
    taskset -c 0 "${VG[@]}" "${NODE[@]}" 2>vg.err &
    V=$!
    sleep 3
    taskset -c 0 "${GW[@]}" 2>gw.err &
    PIDS=($! "$V") ;; # the gateway stops first
gateway)
    taskset -c 0 "${NODE[@]}" 2>node.err &
    O=$!
    sleep 1
    taskset -c 0 "${VG[@]}" "${GW[@]}" 2>vg.err &
    V=$!
    PIDS=("$V" "$O") ;;
standalone)
    AG=$AN
    taskset -c 0 "${VG[@]}" "$BUILD/cmd/shoal" --udp "127.0.0.1:$PORT" --http "127.0.0.1:$PORT" \
        --workers 1 --log-level warn --admin "127.0.0.1:$AN" 2>vg.err &
    V=$!
    PIDS=("$V") ;;
esac
sleep 8 # valgrind starts slowly
timeout 90 taskset -c 1 "$BUILD/tests/loadgen/shoal-load" --target "127.0.0.1:$PORT" --workers 1 \
    --duration 30 --warmup 1 --rate "$RATE" --torrents 1000000 --peers 2000000 --seed 1 \
    --mode "$MODE" >load.txt 2>&1 &
L=$!
sleep 8
callgrind_control -z "$V" >/dev/null 2>&1
curl -s "127.0.0.1:$AG/metrics" >m-gw-0.txt
[ "$ROLE" = standalone ] || curl -s "127.0.0.1:$AN/metrics" >m-node-0.txt
sleep 15
callgrind_control -d "$V" >/dev/null 2>&1
curl -s "127.0.0.1:$AG/metrics" >m-gw-1.txt
[ "$ROLE" = standalone ] || curl -s "127.0.0.1:$AN/metrics" >m-node-1.txt
wait "$L" || true
stop_all
grep RESULT load.txt || { echo "cg.sh: no RESULT from shoal-load (see $OUT/load.txt)" >&2; exit 1; }
