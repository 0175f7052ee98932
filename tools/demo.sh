#!/usr/bin/env bash
# README command one: set up, build, fetch the two real models (once, into the model cache), and run
# the main job — `nexus demo`: the real teachers from their GGUF files, checked against transformers
# and generating, then the tiny fixture of every family.
#
# Builds the command line only (no tests, examples or benchmarks), in ${NEXUS_BUILD_DIR:-build}-demo.
# The demo runs on the CPU; the CUDA kernels are built only where a GPU is present (nvidia-smi -L) or
# when asked for:
#   tools/demo.sh --cuda   or   NEXUS_ENABLE_CUDA=ON tools/demo.sh   (NEXUS_ENABLE_CUDA=OFF: never)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cuda="${NEXUS_ENABLE_CUDA:-}"
for arg in "$@"; do
  case "$arg" in
    --cuda) cuda=ON ;;
    *) echo "demo: unknown argument '$arg' (known: --cuda)" >&2; exit 2 ;;
  esac
done
if [ -z "$cuda" ]; then
  cuda=OFF
  if command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then cuda=ON; fi
fi
build="${NEXUS_BUILD_DIR:-build}-demo"
NEXUS_BUILD_DIR="$build" bash tools/build.sh -DNEXUS_ENABLE_CUDA="$cuda" \
  -DNEXUS_BUILD_TESTS=OFF -DNEXUS_BUILD_EXAMPLES=OFF -DNEXUS_BUILD_BENCH=OFF -DNEXUS_BUILD_TOOLS=ON
bash tools/fetch_models.sh >/dev/null
"$build/nexus" demo --models tests/data/models --references tests/data/real
