#!/usr/bin/env bash
# Where the CPU time goes: perf profiles (software cpu-clock sampling, no hardware counters needed) of
# `nexus bench` on each real model, prefill and decode apart, top symbols written to
# bench/results/cpu-profile.txt. Run after bench/cpu/run.sh (it uses the same binary and models).
#
#   bash bench/cpu/profile.sh [threads]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
threads="${1:-2}"
nexus="${NEXUS_BUILD_DIR:-build}/nexus"
models="${NEXUS_MODELS:-$HOME/.cache/nexus/models}"
out=bench/results/cpu-profile.txt
command -v perf >/dev/null || { echo "profile: needs perf (apt-get install linux-perf)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
{
  echo "# bash bench/cpu/profile.sh $threads    commit $(git rev-parse --short HEAD)    $(date -u +%FT%TZ)"
  echo "# $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
  for m in SmolLM2-135M-Instruct.Q4_1.gguf gemma-3-270m-q4_k_m.gguf; do
    for phase in "prefill 512:--prompt-tokens 512 --decode 1" "decode 128:--prompt-tokens 8 --decode 128"; do
      name="${phase%%:*}" args="${phase#*:}"
      # shellcheck disable=SC2086
      perf record -q -e cpu-clock -o "$tmp/perf.data" "$nexus" bench "$models/$m" $args --threads "$threads" \
        --repeat 1 >/dev/null 2>&1
      echo
      echo "## $m, $name, $threads threads: share of CPU time by function"
      perf report -i "$tmp/perf.data" --no-children --sort symbol --percent-limit 1.5 2>/dev/null |
        grep -E '^ +[0-9]' | sed -E 's/ +$//' | cut -c1-140
    done
  done
} >"$out"
echo "profile: $out"
