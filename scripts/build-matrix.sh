#!/usr/bin/env bash
# scripts/build-matrix.sh: builds every target in each CMake build type a user may pick (Debug,
# RelWithDebInfo, Release) with CMake's default generator and with Ninja, warnings as errors. The
# optimiser's warnings differ from the Debug build's (format-truncation, maybe-uninitialized), so
# a Debug-only CI would let a Release build break for packagers. CI runs it; it builds only.
#
#   scripts/build-matrix.sh [build-type ...]     default: Debug RelWithDebInfo Release
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/env.sh
. scripts/env.sh

types=("$@")
[ ${#types[@]} -gt 0 ] || types=(Debug RelWithDebInfo Release)
jobs=$(nproc 2>/dev/null || echo 2)
failed=()
mkdir -p build/matrix
for type in "${types[@]}"; do
  for gen in default Ninja; do
    dir="build/matrix/$type-$gen"
    args=(-S . -B "$dir" -DCMAKE_BUILD_TYPE="$type" -DTK_WERROR=ON)
    [ "$gen" = default ] || args+=(-G "$gen")
    t0=$(date +%s)
    if cmake "${args[@]}" >"$dir.log" 2>&1; then
      if cmake --build "$dir" -j "$jobs" >>"$dir.log" 2>&1; then
        echo "build-matrix: $type ($gen): ok in $(($(date +%s) - t0)) s"
        continue
      fi
    fi
    echo "build-matrix: $type ($gen): FAILED (log $dir.log)" >&2
    grep -E 'error|warning' "$dir.log" | head -20 >&2 || tail -20 "$dir.log" >&2
    failed+=("$type/$gen")
  done
done
[ ${#failed[@]} -eq 0 ] || { echo "build-matrix: failed: ${failed[*]}" >&2; exit 1; }
