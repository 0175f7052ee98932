#!/usr/bin/env bash
# `nexus extract` killed with SIGKILL at several points, then rerun to the end, must leave the same
# bytes as an uninterrupted run. Usage: extract_kill.sh NEXUS_BINARY TEST_DATA_DIR WORK_DIR
set -euo pipefail
nexus=$1 data=$2 work=$3
rm -rf "$work" && mkdir -p "$work/corpus"
# A corpus large enough that the run takes a while: varied lines in several files and a JSONL file.
for f in 0 1 2 3; do
  for i in $(seq 1 300); do
    echo "Line $i of file $f: the quick brown fox $((i * 7 + f)) jumps over the lazy dog; naïve café 東京 🙂."
  done > "$work/corpus/doc$f.txt"
done
for i in $(seq 1 200); do echo "{\"text\": \"record $i: def f(x):\\n    return x * $i\"}"; done > "$work/corpus/records.jsonl"
args=(extract --teacher "$data/models/llama" --teacher "$data/models/qwen2" --corpus "$work/corpus"
      --layers 0,-1,final --topk 4 --dtype bf16 --context 32 --shard-size 256KiB --quiet)

"$nexus" "${args[@]}" --out "$work/whole" > /dev/null
shards=$(ls "$work/whole" | grep -c '^shard-')
echo "uninterrupted: $shards shards"
[ "$shards" -ge 8 ] || { echo "too few shards ($shards) for kill points"; exit 1; }

kills=0
for target in 1 3 6; do
  "$nexus" "${args[@]}" --out "$work/killed" > /dev/null &
  pid=$!
  # Kill once at least $target shards are on disk, or a short while in, whichever first.
  for _ in $(seq 1 2000); do
    n=$(ls "$work/killed" 2>/dev/null | grep -c '^shard-.*safetensors$' || true)
    [ "$n" -ge "$target" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.005
  done
  if kill -9 "$pid" 2>/dev/null; then kills=$((kills + 1)); fi
  wait "$pid" 2>/dev/null || true
  if grep -q '"complete": true' "$work/killed/manifest.json" 2>/dev/null; then
    echo "the run finished before kill point $target"
  fi
done
"$nexus" "${args[@]}" --out "$work/killed" > /dev/null
[ "$kills" -ge 2 ] || { echo "only $kills of 3 runs were killed mid-way"; exit 1; }
for f in "$work/whole"/*; do
  cmp "$f" "$work/killed/$(basename "$f")" || { echo "differs: $(basename "$f")"; exit 1; }
done
[ "$(ls "$work/whole" | wc -l)" -eq "$(ls "$work/killed" | wc -l)" ] || { echo "different file lists"; exit 1; }
echo "killed $kills times; store identical to the uninterrupted one"
rm -rf "$work"
