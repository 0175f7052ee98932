#!/usr/bin/env bash
# Issue 14's acceptance run: nexus extract on the two real teachers over 256 KB of text (this
# repository's docs and headers), killed with kill -9 after 150 s, resumed to the end, read back
# through nexus::fusion::feature_store (extract_readback), then rerun (nothing left to do).
#   bash bench/extract/accept.sh [BUILD_DIR]   > bench/results/extract-acceptance-real.txt
set -uo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
M=${NEXUS_MODELS:-$HOME/.cache/nexus/models}
work=$(mktemp -d /tmp/nexus_extract_accept.XXXXXX); mkdir -p "$work/corpus"
kb=256 total=0
while IFS= read -r f; do
  left=$((kb * 1024 - total)); [ "$left" -le 0 ] && break
  dst="$work/corpus/$(echo "${f#./}" | tr / _)"
  head -c "$left" "$f" | iconv -f utf-8 -t utf-8 -c > "$dst"; total=$((total + $(stat -c %s "$dst")))
done < <(find ./docs ./README.md ./include -type f \( -name '*.md' -o -name '*.hpp' \) | sort)
echo "# corpus: $total bytes in $(ls "$work/corpus" | wc -l) files (docs/, README.md, include/ in path order); commit $(git rev-parse --short HEAD); $(date -u +%FT%TZ)"
args=(extract --teacher $M/SmolLM2-135M-Instruct.Q4_1.gguf --teacher $M/gemma-3-270m-q4_k_m.gguf --corpus "$work/corpus"
      --layers 6,-1,final --topk 32 --dtype bf16 --context 512 --threads 2 --shard-size 8MiB --out "$work/store")
echo "# $build/nexus ${args[*]}"
"$build/nexus" "${args[@]}" > "$work/first.out" 2>&1 & pid=$!
sleep 150; kill -9 $pid; wait $pid 2>/dev/null
echo "killed with kill -9 after 150 s: $(ls "$work/store" | grep -c '^shard-.*safetensors$') shards on disk"
start=$(date +%s)
/usr/bin/time -f 'peak RSS %M KB' "$build/nexus" "${args[@]}" 2>&1 | tail -3
echo "resumed run: $(( $(date +%s) - start )) s"
"$build/bench/extract_readback" "$work/store"
echo "rerun of the complete store:"; "$build/nexus" "${args[@]}" 2>&1 | tail -2
rm -rf "$work"
