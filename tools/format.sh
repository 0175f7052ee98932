#!/usr/bin/env bash
# Formats the C++ and CUDA sources with the project's .clang-format (Debian's clang-format, installed
# by tools/setup.sh).
#   tools/format.sh           format every source file in place
#   tools/format.sh --check   change nothing: list the files that differ, exit 1 if any does
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
fmt="${CLANG_FORMAT:-clang-format}"
command -v "$fmt" >/dev/null || { echo "format: $fmt not found (bash tools/setup.sh installs it)" >&2; exit 2; }
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  # tracked files and new ones not yet added (but not ignored ones), so a new file is formatted before its commit
  mapfile -t files < <(git ls-files --cached --others --exclude-standard -- '*.hpp' '*.cpp' '*.cu' '*.cuh' ':!tests/data')
else
  mapfile -t files < <(find include kernels tests tools bench examples -type f \
    \( -name '*.hpp' -o -name '*.cpp' -o -name '*.cu' -o -name '*.cuh' \) -not -path 'tests/data/*' | sort)
fi
case "${1:-}" in
  --check)
    differ=()
    for f in "${files[@]}"; do "$fmt" --style=file "$f" | cmp -s "$f" - || differ+=("$f"); done
    if ((${#differ[@]})); then
      printf '%s\n' "${differ[@]}"
      echo "format: ${#differ[@]} of ${#files[@]} files differ from .clang-format (run: bash tools/format.sh)" >&2
      exit 1
    fi
    echo "format: ${#files[@]} files match .clang-format"
    ;;
  "")
    "$fmt" --style=file -i "${files[@]}"
    echo "format: ${#files[@]} files formatted"
    ;;
  *) echo "usage: tools/format.sh [--check]" >&2; exit 2 ;;
esac
