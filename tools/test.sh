#!/usr/bin/env bash
# README command two (and CI): set up, build, run every test (and the GPU proof script's dry run), then each fuzzer for
# ${NEXUS_FUZZ_SECONDS:-60} seconds from seeds taken from tests/data.
#
#   tools/test.sh --sanitize   instead: the tests built with ASan + UBSan (CUDA off, no fuzzers) in
#                              ${NEXUS_BUILD_DIR:-build}-sanitize, and run there
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ "${1:-}" = "--sanitize" ]; then
  bash tools/setup.sh
  build="${NEXUS_BUILD_DIR:-build}-sanitize"
  # -O1: sanitizer builds at -O3 take much longer to compile for little gain in run time.
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS_RELEASE="-O1 -DNDEBUG" -DNEXUS_SANITIZE=ON \
    -DNEXUS_ENABLE_CUDA=OFF -DNEXUS_BUILD_TOOLS=OFF -DNEXUS_BUILD_EXAMPLES=OFF -DNEXUS_BUILD_BENCH=OFF >/dev/null
  cmake --build "$build" -j"$(nproc)" --target nexus_tests
  echo "[test] ${SECONDS} s: built with sanitizers; running"
  # Any report ends the run with a non-zero status (-fno-sanitize-recover, halt_on_error). The [real]
  # models (minutes each under ASan) run in the plain mode only; the fixtures cover the same code.
  ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:${ASAN_OPTIONS:-}" UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}" \
    "$build/tests/nexus_tests" "~[real]"
  echo "sanitize: nexus_tests passed under ASan + UBSan"
  exit 0
fi
bash tools/build.sh
echo "[test] ${SECONDS} s: built; format check, ctest"
bash tools/format.sh --check  # the sources follow .clang-format (tools/format.sh applies it)
build="${NEXUS_BUILD_DIR:-build}"
(cd "$build" && ctest --output-on-failure -j"$(nproc)")

# The GPU proof script's dry run (tools/gpu/README.md) on the build folder just built (nothing is rebuilt):
# argument handling, each program's no-device path and the result writer; every phase ok or skipped.
proof_out=$(mktemp -d)
bash tools/gpu/proof.sh "$proof_out" --dry-run --build-dir "$build" | tail -n 14
python3 tools/gpu/result.py check "$proof_out"
rm -rf "$proof_out"
bash tools/gpu/stub_test.sh  # its real-run path, with stand-ins for the GPU programs

echo "[test] ${SECONDS} s: fuzzers"
fuzz_build="${build}-fuzz"
CXX=clang++ cmake -S . -B "$fuzz_build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNEXUS_BUILD_FUZZERS=ON \
  -DNEXUS_BUILD_TESTS=OFF -DNEXUS_BUILD_TOOLS=OFF -DNEXUS_ENABLE_CUDA=OFF >/dev/null
cmake --build "$fuzz_build" -j"$(nproc)"
seconds="${NEXUS_FUZZ_SECONDS:-60}"
seeds_st="$fuzz_build/corpus-safetensors" seeds_cfg="$fuzz_build/corpus-config"
mkdir -p "$seeds_st" "$seeds_cfg"
for d in tests/data/models/*/; do
  name=$(basename "$d")
  cp "$d"/config.json "$seeds_cfg/model-$name.json"
  for f in "$d"/*.safetensors; do cp "$f" "$seeds_st/$name-$(basename "$f")"; done
done
for d in tests/data/configs/*/; do cp "$d"/config.json "$seeds_cfg/$(basename "$d").json"; done
# A crash makes libFuzzer exit non-zero and leaves the input as crash-* for reproduction.
"$fuzz_build/tests/fuzz/fuzz_safetensors" -max_total_time="$seconds" -max_len=8192 -print_final_stats=1 "$seeds_st" 2>&1 | tail -n 4
"$fuzz_build/tests/fuzz/fuzz_config" -max_total_time="$seconds" -max_len=4096 -print_final_stats=1 "$seeds_cfg" 2>&1 | tail -n 4
seeds_tok="$fuzz_build/corpus-tokenizer"
mkdir -p "$seeds_tok"
head -n 200 tests/data/tokenizers/gpt2/cases.jsonl | split -l 20 - "$seeds_tok/case-"
"$fuzz_build/tests/fuzz/fuzz_tokenizer" -max_total_time="$seconds" -max_len=2048 -print_final_stats=1 "$seeds_tok" 2>&1 | tail -n 4
seeds_gguf="$fuzz_build/corpus-gguf"
mkdir -p "$seeds_gguf"
cp tests/data/gguf/*.gguf "$seeds_gguf/"
"$fuzz_build/tests/fuzz/fuzz_gguf" -max_total_time="$seconds" -max_len=32768 -print_final_stats=1 "$seeds_gguf" 2>&1 | tail -n 4
seeds_bundle="$fuzz_build/corpus-bundle"
mkdir -p "$seeds_bundle"
sha=$(printf '%064d' 0)
printf '{"format":"nexus.bundle","version":1,"budget_bytes":0,"teachers":[{"name":"a","file":"a.gguf","bytes":1,"sha256":"%s","source":{"kind":"path","path":"a.gguf"}},{"name":"b","file":"b.gguf","bytes":2,"sha256":"%s","source":{"kind":"pypi","package":"b==1"}}],"mixture":{"kind":"linear","weights":"w"},"cascade":{"order":[1,0],"thresholds":"t"},"router":{"prefix_bytes":64,"weight":"rw","bias":"rb"},"bridges":[{"name":"x","prefix":"bridge.0."}]}' "$sha" "$sha" >"$seeds_bundle/full.json"
printf '{"format":"nexus.bundle","version":1,"budget_bytes":5,"teachers":[{"name":"e","file":"e.gguf","bytes":3,"sha256":"%s","source":{"kind":"embedded","tensor":"teacher.0"}}]}' "$sha" >"$seeds_bundle/embedded.json"
"$fuzz_build/tests/fuzz/fuzz_bundle" -max_total_time="$seconds" -max_len=4096 -print_final_stats=1 "$seeds_bundle" 2>&1 | tail -n 4
echo "fuzzers: ${seconds}s each, no crash"
