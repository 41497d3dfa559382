#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A fuzzing campaign: every libFuzzer target for a while, the inputs that grow coverage kept in
# tests/fuzz/corpus/NAME (which the CI smoke runs then start from), one table row per target.
#   tests/fuzz/campaign.sh [-s SECONDS] [-b BUILD] [-o TABLE] [TARGET...]
# SECONDS per target (default 600), BUILD a -DSHOAL_FUZZ=ON build (default build/fuzz, configured
# and built here if missing), TABLE the markdown rows (default build/fuzz-campaign/table.md).
# Targets run one after another under nice, so a campaign can share the machine. A target that
# crashes keeps its reproducer in build/fuzz-campaign/NAME/ and the script exits 1 at the end.
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=600
build=build/fuzz
table=build/fuzz-campaign/table.md
while getopts "s:b:o:" opt; do
    case $opt in
    s) seconds=$OPTARG ;;
    b) build=$OPTARG ;;
    o) table=$OPTARG ;;
    *)
        echo "usage: $0 [-s SECONDS] [-b BUILD] [-o TABLE] [TARGET...]" >&2
        exit 2
        ;;
    esac
done
shift $((OPTIND - 1))
case $seconds in '' | *[!0-9]*)
    echo "$0: -s wants whole seconds, got '$seconds'" >&2
    exit 2
    ;;
esac

if [ ! -f "$build/CMakeCache.txt" ]; then
    CC=clang cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Debug -DSHOAL_FUZZ=ON >/dev/null
fi
cmake --build "$build" -j"$(nproc 2>/dev/null || echo 2)" >/dev/null

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    while read -r f; do
        targets+=("$(basename "$f" | sed 's/^fuzz_//')")
    done < <(find "$build/tests" -name 'fuzz_*' -type f -executable | sort)
fi
[ ${#targets[@]} -gt 0 ] || {
    echo "$0: no fuzz_* executables in $build/tests" >&2
    exit 2
}

work=build/fuzz-campaign
mkdir -p "$work" "$(dirname "$table")"
printf '| target | seconds | executions | exec/s | coverage (edges) | features | corpus kept | findings |\n' >"$table"
printf '|---|---|---|---|---|---|---|---|\n' >>"$table"
status=0
for t in "${targets[@]}"; do
    bin=$(find "$build/tests" -name "fuzz_$t" -type f -executable | head -n 1)
    [ -n "$bin" ] || {
        echo "$0: no fuzz_$t under $build/tests" >&2
        status=1
        continue
    }
    dir=$work/$t
    rm -rf "$dir"
    mkdir -p "$dir/new" "$dir/merged" "tests/fuzz/corpus/$t"
    inputs=("tests/fuzz/corpus/$t")
    # Seeds: tests/fuzz/seeds/NAME, or a tool's own (tests/NAME/fuzz-seeds, e.g. loadgen).
    for d in "tests/fuzz/seeds/$t" "tests/$t/fuzz-seeds"; do
        [ -d "$d" ] && inputs+=("$d")
    done
    echo "== $t: ${seconds} s" >&2
    set +e
    nice -n 10 "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$dir/" "$dir/new" "${inputs[@]}" >"$dir/log" 2>&1
    rc=$?
    set -e
    execs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+).*/\1/p' "$dir/log" | tail -n 1)
    last=$(grep -E '^#[0-9]+' "$dir/log" | tail -n 1 || true)
    cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$last")
    ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$last")
    findings=none
    if [ $rc -ne 0 ]; then
        findings="exit $rc: $(ls "$dir" | grep -E '^(crash|leak|timeout|oom|slow-unit)-' | tr '\n' ' ')"
        status=1
    fi
    # Keep a minimal set that covers what the old corpus, the seeds and this run reached.
    "$bin" -merge=1 -rss_limit_mb=2048 "$dir/merged" "tests/fuzz/corpus/$t" "$dir/new" \
        ${inputs[1]:+"${inputs[1]}"} >"$dir/merge.log" 2>&1 || true
    if [ -n "$(ls -A "$dir/merged")" ]; then
        rm -f "tests/fuzz/corpus/$t"/*
        cp "$dir/merged"/* "tests/fuzz/corpus/$t/"
    fi
    kept=$(find "tests/fuzz/corpus/$t" -type f | wc -l)
    rate=$((${execs:-0} / (seconds > 0 ? seconds : 1)))
    printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$t" "$seconds" "${execs:-?}" "$rate" \
        "${cov:-?}" "${ft:-?}" "$kept" "$findings" >>"$table"
    tail -n 1 "$table" >&2
done
echo "table: $table" >&2
exit $status
