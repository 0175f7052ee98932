#!/usr/bin/env bash
# Encode throughput, one thread, Nexus vs the `tokenizers` library, same text, same tokenizer.json,
# same run. Writes bench/results/tokenizer-<kind>.json with both figures and the ratio.
#   bench/run_tokenizer_bench.sh [KIND...]      (default: gpt2 llama3 qwen2 llama2)
# Needs the build (tools/build.sh) and a Python with tokenizers (NEXUS_VENV, default .venv-fixtures,
# created by tools/fixtures/make_fixtures.sh).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
build="${NEXUS_BUILD_DIR:-build}"
python="${NEXUS_VENV:-.venv-fixtures}/bin/python"
kinds=("$@")
[ ${#kinds[@]} -gt 0 ] || kinds=(gpt2 llama3 qwen2 llama2)
text="$build/bench-text.txt"
# ~2 MB of mixed prose and code: the repository's docs and headers, repeated.
: > "$text"
for _ in 1 2 3 4 5 6 7 8; do cat README.md docs/*.md include/nexus/*/*.hpp >> "$text"; done
mkdir -p bench/results
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
for kind in "${kinds[@]}"; do
  dir="tests/data/tokenizers/$kind"
  ours=$("$build/bench/tokenizer_bench" "$dir" "$text" 5)
  theirs=$(RAYON_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false "$python" bench/tokenizer_bench.py "$dir/tokenizer.json" "$text" 5)
  "$python" - "$kind" "$ours" "$theirs" "$commit" <<'PY'
import json, platform, sys
kind, ours, theirs, commit = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4]
assert ours["tokens"] == theirs["tokens"], ("token counts differ", ours["tokens"], theirs["tokens"])
out = {"kind": kind, "nexus": ours, "tokenizers": theirs, "ratio_nexus_over_tokenizers": ours["mb_per_s"] / theirs["mb_per_s"],
       "machine": platform.processor() or platform.machine(), "commit": commit,
       "command": f"bench/run_tokenizer_bench.sh {kind}"}
json.dump(out, open(f"bench/results/tokenizer-{kind}.json", "w"), indent=2)
print(f"{kind}: nexus {ours['mb_per_s']:.2f} MB/s, tokenizers {theirs['mb_per_s']:.2f} MB/s, ratio {out['ratio_nexus_over_tokenizers']:.2f}")
PY
done
