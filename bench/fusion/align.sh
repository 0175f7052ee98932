#!/usr/bin/env bash
# Closed-form maps between two real teachers of different families and tokenizers: SmolLM2-135M-Instruct
# (Llama, 30 layers, width 576) and Gemma 3 270M (18 layers, width 640), from their GGUF files.
#   1. `nexus extract` both over bench/fusion/corpus.jsonl (40 documents of English prose: Python's pydoc
#      topics, made by bench/fusion/make_corpus.py) at 16 layers of each plus the final norm, top-k 32;
#   2. `nexus align --all-layers` SmolLM2 -> Gemma for ridge, Procrustes, CCA and OT on a 9 × 10 grid of
#      those layers: held-out R², cosine, relative error for every layer pair, train and held-out split
#      by document (8 of 40 held out).
# Writes bench/results/align_smollm2_gemma3.{json,*.png} and align_smollm2_gemma3.env.json (command,
# machine, versions). The store (~0.4 GB) goes to $STORE (default /tmp/nexus_align_store); a rerun resumes it.
# Usage: bash bench/fusion/align.sh [BUILD_DIR]      (about 25 minutes on 2 shared cores)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
store=${STORE:-/tmp/nexus_align_store}
threads=${THREADS:-2}
out=bench/results/align_smollm2_gemma3
cmake --build "$build" --target nexus_cli -j2 > /dev/null
nexus=$build/nexus
# Every other layer of Gemma (positive indices from the bottom, negative from the top); SmolLM2 gets
# the even layers 0-16 and the odd ones 17-29. Then the final norm's output.
layers=0,2,4,6,8,10,12,14,16,-1,-3,-5,-7,-9,-11,-13,final
t0=$(date +%s)
"$nexus" extract --teacher "$smol" --teacher "$gemma" --corpus bench/fusion/corpus.jsonl --layers "$layers" \
  --topk 32 --context 512 --dtype bf16 --threads "$threads" --out "$store" --quiet
t1=$(date +%s)
# A 9 × 10 grid of the stored layers (every fourth of SmolLM2, every second of Gemma, and both final
# norms): about 90 pairs × 4 methods, 10-15 minutes on 2 shared cores.
from_layers=0,4,8,12,16,21,25,29,final
to_layers=0,2,4,6,9,11,13,15,17,final
"$nexus" align --store "$store" --from 0 --to 1 --all-layers --layers-from $from_layers --layers-to $to_layers \
  --method all --out "$out.json"
t2=$(date +%s)
python3 - "$out" "$smol" "$gemma" "$((t1 - t0))" "$((t2 - t1))" "$layers" <<'PY'
import json, platform, subprocess, sys
out, smol, gemma, t_extract, t_align, layers = sys.argv[1:]
def sh(c):
    try: return subprocess.run(c, shell=True, capture_output=True, text=True).stdout.strip()
    except Exception: return ""
env = {"command": "bash bench/fusion/align.sh",
       "extract": f"nexus extract --teacher {smol} --teacher {gemma} --corpus bench/fusion/corpus.jsonl --layers {layers} --topk 32 --context 512 --dtype bf16",
       "align": "nexus align --store STORE --from 0 --to 1 --all-layers --layers-from 0,4,8,12,16,21,25,29,final --layers-to 0,2,4,6,9,11,13,15,17,final --method all",
       "extract_seconds": int(t_extract), "align_seconds": int(t_align),
       "git": sh("git rev-parse HEAD"), "cpu": sh("lscpu | grep 'Model name' | sed 's/.*: *//'"),
       "cores": sh("nproc"), "os": platform.platform(), "compiler": sh("c++ --version | head -1"),
       "openblas": sh("dpkg-query -W -f='${Version}' libopenblas0-pthread libopenblas0 2>/dev/null | head -c 40"),
       "models": {"smollm2": "SmolLM2-135M-Instruct.Q4_1.gguf sha256 b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
                  "gemma3": "gemma-3-270m-q4_k_m.gguf sha256 a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"},
       "corpus": "bench/fusion/corpus.jsonl sha256 " + sh("sha256sum bench/fusion/corpus.jsonl | cut -d' ' -f1")}
json.dump(env, open(out + ".env.json", "w"), indent=2)
print(open(out + ".env.json").read())
PY
