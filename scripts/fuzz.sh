#!/bin/sh
# fuzz.sh [seconds] - fuzz every decoder of the event contract (tests/fuzz) with libFuzzer.
#
# Configures a clang build in build-fuzz (-DTK_FUZZ=ON, ASan + UBSan), builds the drivers, seeds
# a corpus from the contract samples (ev_samples --seeds) plus tests/fuzz/corpus, and runs each
# driver for [seconds] (default 20). New inputs go to build-fuzz/corpus/<driver>; a crash is
# saved as build-fuzz/artifacts/<driver>/crash-* and makes the script exit 1. Replay one with
#   build-fuzz/tests/fuzz/<driver> <file>      (or build/tests/fuzz/<driver>_replay <file>)
# Warnings do not stop this build (TK_WERROR=OFF): the gcc build is the one that gates on them.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-20}
build="$root/build-fuzz"
cc=${FUZZ_CC:-clang}

if ! command -v "$cc" >/dev/null 2>&1; then
    echo "fuzz.sh: $cc is required (libFuzzer ships with clang; Debian: clang, libclang-rt-dev)" >&2
    exit 1
fi
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_C_COMPILER="$cc" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DTK_FUZZ=ON -DTK_SANITIZE=address,undefined -DTK_WERROR=OFF >/dev/null
ninja -C "$build" fuzz_ev_envelope fuzz_ev_data ev_samples

rm -rf "$build/seeds"
"$build/tests/contract/ev_samples" --seeds "$build/seeds"

status=0
for pair in fuzz_ev_envelope:envelope fuzz_ev_data:data; do
    driver=${pair%%:*}
    sub=${pair#*:}
    mkdir -p "$build/corpus/$driver" "$build/artifacts/$driver"
    echo "== $driver: ${secs}s"
    if ! "$build/tests/fuzz/$driver" -max_total_time="$secs" -print_final_stats=1 \
        -dict="$root/tests/fuzz/ev.dict" -max_len=70000 -timeout=10 \
        -artifact_prefix="$build/artifacts/$driver/" \
        "$build/corpus/$driver" "$root/tests/fuzz/corpus/$sub" "$build/seeds/$sub"; then
        echo "fuzz.sh: $driver found a failure: see $build/artifacts/$driver/" >&2
        status=1
    fi
done
exit $status
