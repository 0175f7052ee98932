#!/usr/bin/env bash
# The retention benchmark of issue 16: SmolLM2-135M-Instruct and Gemma 3 270M as one .nexus bundle,
# fitted (linear and log-linear mixtures, router, cascade at half the bytes escalated) on the dev part
# of bench/fusion/retention_corpus.jsonl and measured on its test part: bits per byte per domain and
# overall for each teacher alone, the per-document oracle, both mixtures, the router and the cascade,
# the cascade's quality/share curve, and the speed of each. One command:
#   bash bench/fusion/retention.sh [BUILD_DIR]
# Writes bench/results/retention_smollm2_gemma3.{json,domains.png,cascade.png,env.json}.
# The corpus is committed; bench/fusion/make_retention_corpus.py remakes it (needs fortunes-de/es/it).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
threads=${THREADS:-0}
out=bench/results/retention_smollm2_gemma3
cmake -S . -B "$build" -DNEXUS_BUILD_BENCH=ON >/dev/null
cmake --build "$build" --target retention -j2 >/dev/null
t0=$(date +%s)
"$build/bench/retention" --teacher "$smol" --teacher "$gemma" --name smollm2 --name gemma3 \
  --corpus bench/fusion/retention_corpus.jsonl --out "$out" --threads "$threads" | tee "$out.txt"
rm -f "$out.nexus"
python3 - "$out" "$(( $(date +%s) - t0 ))" "$threads" <<'PY'
import json, platform, subprocess, sys
out, seconds, threads = sys.argv[1], int(sys.argv[2]), sys.argv[3]
sh = lambda c: subprocess.run(c, shell=True, capture_output=True, text=True).stdout.strip()
env = {"command": "bash bench/fusion/retention.sh", "threads": threads, "seconds": seconds,
       "git": sh("git rev-parse HEAD"), "dirty": sh("git status --porcelain -uno") != "",
       "cpu": sh("lscpu | grep 'Model name' | sed 's/.*: *//'"), "cores": sh("nproc"), "os": platform.platform(),
       "loadavg_end": open("/proc/loadavg").read().split()[:3], "compiler": sh("c++ --version | head -1"),
       "models": {"smollm2": "SmolLM2-135M-Instruct.Q4_1.gguf sha256 b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
                  "gemma3": "gemma-3-270m-q4_k_m.gguf sha256 a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"},
       "corpus": "bench/fusion/retention_corpus.jsonl sha256 " + sh("sha256sum bench/fusion/retention_corpus.jsonl | cut -d' ' -f1")}
json.dump(env, open(out + ".env.json", "w"), indent=2)
PY
