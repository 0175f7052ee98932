#!/usr/bin/env bash
# The serving benchmark in one command: `nexus serve` vs llama-cpp-python's OpenAI-compatible server (llama.cpp)
# on the real models' GGUF files, same threads, 1, 4 and 16 concurrent clients (the official openai client, chat
# completions, temperature 0, max_tokens 64). Writes bench/results/serve-throughput.json and
# bench/results/serve-throughput.png.
#
#   bash bench/serve/run.sh [throughput.py options]   (bench/serve/throughput.py --help; e.g. --models smollm2)
#
# Sets up what it needs: the Python environment ${NEXUS_SERVE_BENCH_VENV:-.venv-serve-bench} from
# bench/serve/requirements.txt (once, under nice; llama-cpp-python builds llama.cpp from source) and the models
# (tools/fetch_models.sh). It builds nothing: the `nexus` binary must be in ${NEXUS_BUILD_DIR:-build}.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
venv="${NEXUS_SERVE_BENCH_VENV:-.venv-serve-bench}"
build="${NEXUS_BUILD_DIR:-build}"
req=bench/serve/requirements.txt

source bench/python_env.sh
python_env "$venv" "$req" serve-bench

[ -x "$build/nexus" ] || { echo "serve-bench: no $build/nexus (build the nexus_cli target first)" >&2; exit 1; }
bash tools/fetch_models.sh >/dev/null

NEXUS_SERVE_BENCH_COMMAND="bash bench/serve/run.sh$(printf ' %q' "$@")" \
  exec "$venv/bin/python" bench/serve/throughput.py --nexus "$build/nexus" "$@"
