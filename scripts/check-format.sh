#!/usr/bin/env bash
# scripts/check-format.sh: fails when a C file differs from the repo's .clang-format.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
git ls-files '*.c' '*.h' | xargs clang-format --dry-run -Werror
echo "format: ok"
