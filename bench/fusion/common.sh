# Sourced by the fusion benchmarks (after `set -euo pipefail`): the repository root as the working
# folder, the build folder ($1, default build), and the two real teachers, fetched if missing.
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
build=${1:-build}
models=${NEXUS_MODELS:-$HOME/.cache/nexus/models}
smol=$models/SmolLM2-135M-Instruct.Q4_1.gguf
gemma=$models/gemma-3-270m-q4_k_m.gguf
[ -f "$smol" ] && [ -f "$gemma" ] || bash tools/fetch_models.sh >/dev/null
mkdir -p bench/results
