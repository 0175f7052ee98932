#!/usr/bin/env bash
# tools/fusion/check_store.py on a store of tiny fixtures: the stored hidden states and top-k against
# transformers. Skipped (exit 77) where no Python with transformers is at hand: tests never need it.
# Usage: check_store_fixtures.sh NEXUS_BINARY SOURCE_DIR WORK_DIR   (env NEXUS_REFERENCE_PYTHON)
set -euo pipefail
nexus=$1 src=$2 work=$3
py=${NEXUS_REFERENCE_PYTHON:-/work/venv-fix/bin/python}
"$py" -c "import transformers, safetensors, torch" 2>/dev/null || { echo "no Python with transformers: skipped"; exit 77; }
rm -rf "$work"
m=$src/tests/data/models
"$nexus" extract --teacher "$m/llama" --teacher "$m/gemma2" --teacher "$m/gpt_neox" --corpus "$src/README.md" \
  --layers 0,-1,final --topk 8 --dtype f32 --context 64 --out "$work" --quiet
"$py" "$src/tools/fusion/check_store.py" "$work" --windows 2
rm -rf "$work"
