#!/usr/bin/env bash
# bench/extract: `nexus extract` on the two real teachers against the obvious transformers script
# (hf_extract.py: output_hidden_states=True, same windows, layers, top-k and threads), tokens/s and
# peak RSS of each, in one run. Writes bench/results/extract.json.
#   bash bench/extract/run.sh [BUILD_DIR]      (env: CORPUS_KB=64 THREADS=2 LAYERS=6,-1 TOPK=32 CONTEXT=512)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build}
nexus=$build/nexus
py=${PYTHON:-/work/venv-t5/bin/python}
models=${NEXUS_MODELS:-$HOME/.cache/nexus/models}
kb=${CORPUS_KB:-64} threads=${THREADS:-$(nproc)} layers=${LAYERS:-6,-1} topk=${TOPK:-32} context=${CONTEXT:-512}
work=$(mktemp -d /tmp/nexus_extract_bench.XXXXXX)
trap 'rm -rf "$work"' EXIT

# The corpus: the repository's docs and headers in path order, up to CORPUS_KB kilobytes (the last
# file cut there, at a character boundary).
mkdir -p "$work/corpus"
total=0
while IFS= read -r f; do
  left=$((kb * 1024 - total))
  [ "$left" -le 0 ] && break
  dst="$work/corpus/$(echo "${f#$root/}" | tr / _)"
  head -c "$left" "$f" | iconv -f utf-8 -t utf-8 -c > "$dst"
  total=$((total + $(stat -c %s "$dst")))
done < <(find "$root/docs" "$root/README.md" "$root/include" -type f \( -name '*.md' -o -name '*.hpp' \) | sort)

cmd=("$nexus" extract --teacher "$models/SmolLM2-135M-Instruct.Q4_1.gguf" --teacher "$models/gemma-3-270m-q4_k_m.gguf"
     --corpus "$work/corpus" --layers "$layers" --topk "$topk" --dtype bf16 --context "$context" --threads "$threads"
     --out "$work/store" --quiet)
/usr/bin/time -f '%M' -o "$work/nexus.rss" "${cmd[@]}" | tee "$work/nexus.out"
nexus_line=$(grep "^extract " "$work/nexus.out" | tail -1)
hf_cmd=("$py" "$root/bench/extract/hf_extract.py" "$work/store" "$work/hf.safetensors" --threads "$threads")
/usr/bin/time -f '%M' -o "$work/hf.rss" "${hf_cmd[@]}" | tee "$work/hf.out"

NEXUS_LINE="$nexus_line" NEXUS_RSS_KB=$(tail -1 "$work/nexus.rss") HF_JSON=$(tail -1 "$work/hf.out") \
HF_RSS_KB=$(tail -1 "$work/hf.rss") CORPUS_BYTES=$total CMD="${cmd[*]}" HF_CMD="${hf_cmd[*]}" ROOT="$root" \
  "$py" - <<'PY'
import json, os, platform, re, subprocess
import torch, transformers
e = os.environ
m = re.search(r"(\d+) tokens in ([\d.]+) s", e["NEXUS_LINE"])
tokens, seconds = int(m.group(1)), float(m.group(2))
hf = json.loads(e["HF_JSON"])
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "")
res = {
    "benchmark": "extract",
    "machine": {"cpu": cpu, "cores": os.cpu_count(), "system": platform.platform()},
    "commit": subprocess.run(["git", "-C", e["ROOT"], "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip(),
    "command": "bash bench/extract/run.sh",
    "nexus_command": e["CMD"], "transformers_command": e["HF_CMD"],
    "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "python": platform.python_version()},
    "corpus_bytes": int(e["CORPUS_BYTES"]),
    "nexus": {"tokens": tokens, "seconds": seconds, "tokens_per_second": tokens / seconds,
              "peak_rss_mib": int(e["NEXUS_RSS_KB"]) / 1024, "line": e["NEXUS_LINE"]},
    "transformers": dict(hf, peak_rss_mib=int(e["HF_RSS_KB"]) / 1024),
}
res["ratio_tokens_per_second"] = res["nexus"]["tokens_per_second"] / hf["tokens_per_second"]
out = os.path.join(e["ROOT"], "bench", "results", "extract.json")
json.dump(res, open(out, "w"), indent=2)
print(json.dumps({k: res[k] for k in ("nexus", "transformers", "ratio_tokens_per_second")}, indent=2))
print("wrote", out)
PY
