#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The whole test suite, from a fresh Debian machine: installs what the tests need, checks the
# formatting, builds and runs every test (unit, integration, real-client end-to-end), again under
# AddressSanitizer + UndefinedBehaviorSanitizer, then runs each fuzzer briefly.
#   tests/run.sh            everything
#   SHOAL_QUICK=1 tests/run.sh   skip the sanitizer and fuzz passes
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
jobs=$(nproc 2>/dev/null || echo 2)

deploy/install-deps.sh test

passed=0
failed=0
run_ctest() { # build-dir, then ctest arguments
    local dir=$1 log
    shift
    log=$(mktemp)
    set +e
    ctest --test-dir "$dir" --output-on-failure --timeout 900 "$@" 2>&1 | tee "$log"
    set -e
    local line p f
    line=$(grep -E '[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -n 1)
    rm -f "$log"
    if [ -z "$line" ]; then
        echo "ctest in $dir printed no summary" >&2
        failed=$((failed + 1))
        return
    fi
    f=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$line")
    local total
    total=$(sed -E 's/.* failed out of ([0-9]+).*/\1/' <<<"$line")
    p=$((total - f))
    passed=$((passed + p))
    failed=$((failed + f))
}

echo "== format (clang-format $(clang-format --version | sed -E 's/.*version ([0-9.]+).*/\1/'))"
mapfile -t sources < <(find proto runtime node gateway cmd tests -name '*.[ch]' -not -path '*/seeds/*' | sort)
if clang-format --dry-run --Werror "${sources[@]}"; then
    passed=$((passed + 1))
else
    echo "format: run clang-format -i on the files above" >&2
    failed=$((failed + 1))
fi

echo "== build and test"
cmake -S . -B build/test -DCMAKE_BUILD_TYPE=Release >/dev/null # what deploy/standalone.sh ships
cmake --build build/test -j"$jobs"
run_ctest build/test -j"$jobs"

if [ -z "${SHOAL_QUICK:-}" ]; then
    echo "== AddressSanitizer + UndefinedBehaviorSanitizer"
    cmake -S . -B build/asan -DCMAKE_BUILD_TYPE=Debug -DSHOAL_SANITIZE=address,undefined >/dev/null
    cmake --build build/asan -j"$jobs"
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
        run_ctest build/asan -j"$jobs" -LE bench

    echo "== fuzz smoke (libFuzzer, ${SHOAL_FUZZ_SECONDS:-20} s each)"
    CC=clang cmake -S . -B build/fuzz -DCMAKE_BUILD_TYPE=Debug -DSHOAL_FUZZ=ON \
        -DSHOAL_FUZZ_SECONDS="${SHOAL_FUZZ_SECONDS:-20}" >/dev/null
    cmake --build build/fuzz -j"$jobs"
    run_ctest build/fuzz -L fuzz -j"$jobs"
fi

echo
echo "suites: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
