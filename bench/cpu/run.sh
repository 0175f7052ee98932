#!/usr/bin/env bash
# The CPU benchmark in one command: Nexus vs llama.cpp (llama-cpp-python) vs PyTorch eager (transformers) on
# the real models' GGUF files, threads 1 and 2, prefill 128 and 512 tokens, decode 128; fidelity against
# transformers' fp32 logits. Writes bench/results/cpu-<date>.json and bench/results/cpu.png.
#
#   bash bench/cpu/run.sh [run.py options]    (bench/cpu/run.py --help; e.g. --models smollm2 --threads 2)
#
# Sets up what it needs: the Python environment ${NEXUS_BENCH_VENV:-.venv-bench} from bench/cpu/requirements.txt
# (once; llama-cpp-python builds llama.cpp from source), the `nexus` binary in ${NEXUS_BUILD_DIR:-build}
# (the nexus_cli target only), and the models (tools/fetch_models.sh).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
venv="${NEXUS_BENCH_VENV:-.venv-bench}"
build="${NEXUS_BUILD_DIR:-build}"
req=bench/cpu/requirements.txt

source bench/python_env.sh
python_env "$venv" "$req" bench

bash tools/setup.sh >&2
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" --target nexus_cli -j"$(nproc)" >&2
bash tools/fetch_models.sh >/dev/null

NEXUS_BENCH_COMMAND="bash bench/cpu/run.sh$(printf ' %q' "$@")" \
  exec "$venv/bin/python" bench/cpu/run.py --nexus "$build/nexus" "$@"
