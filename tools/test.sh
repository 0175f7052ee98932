#!/usr/bin/env bash
# README command two (and CI): set up, build, run every test (and the GPU proof script's dry run), then each fuzzer for
# ${NEXUS_FUZZ_SECONDS:-60} seconds from seeds taken from tests/data.
#
#   tools/test.sh --sanitize   instead: the tests of the parsers and the memory-heavy code
#                              (nexus_sanitize_tests, tests/CMakeLists.txt) built with ASan + UBSan
#                              (CUDA off, no fuzzers) in ${NEXUS_BUILD_DIR:-build}-sanitize, and run there
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# Each phase is stamped with the seconds since the start and the CPU time (user + system) its
# commands have used so far, so a slow phase shows in the log even on a busy machine.
cpu_times=$(mktemp)
trap 'rm -f "$cpu_times"' EXIT
stamp() {
  times >"$cpu_times"  # the second line: the children's user and system time
  echo "[test] ${SECONDS} s (cpu $(awk 'NR == 2 { print $1 " user, " $2 " sys" }' "$cpu_times")): $*"
}
if [ "${1:-}" = "--sanitize" ]; then
  bash tools/setup.sh
  build="${NEXUS_BUILD_DIR:-build}-sanitize"
  # -O0: with the sanitizers, g++ compiles a heavy test file in less than half the time -O1 takes
  # (84 s against more than 190 s of CPU for test_extract.cpp); these tests run in about a minute either way.
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS_RELEASE="-O0 -DNDEBUG" -DNEXUS_SANITIZE=ON \
    -DNEXUS_ENABLE_CUDA=OFF -DNEXUS_BUILD_TOOLS=OFF -DNEXUS_BUILD_EXAMPLES=OFF -DNEXUS_BUILD_BENCH=OFF \
    -DNEXUS_BUILD_PYTHON=OFF >/dev/null
  stamp "sanitizer build"
  cmake --build "$build" -j"$(nproc)" --target nexus_sanitize_tests
  stamp "sanitizer run"
  # Any report ends a test with a non-zero status (-fno-sanitize-recover, halt_on_error). The [real]
  # models (minutes each under ASan) run in the plain mode only; the fixtures cover the same code.
  ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:${ASAN_OPTIONS:-}" UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}" \
    ctest --test-dir "$build" --output-on-failure --no-tests=error -j"$(nproc)" -R '^sanitize:'
  echo "sanitize: nexus_sanitize_tests passed under ASan + UBSan"
  stamp "sanitizer done"
  exit 0
fi
stamp "build"
bash tools/build.sh
stamp "format check, ctest"
bash tools/format.sh --check  # the sources follow .clang-format (tools/format.sh applies it)
build="${NEXUS_BUILD_DIR:-build}"
(cd "$build" && ctest --output-on-failure -j"$(nproc)")

stamp "Python: nexus serve driven by the OpenAI client and curl; import nexus under pytest"
venv="$build/venv"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check -r tests/serve/requirements.txt -r tests/python/requirements.txt
"$venv/bin/python" tests/serve/test_openai_api.py "$build/nexus"
PYTHONPATH="$build/python" NEXUS_TEST_DATA="$PWD/tests/data" NEXUS_CLI="$build/nexus" \
  "$venv/bin/python" -m pytest -q -p no:cacheprovider tests/python

stamp "GPU proof script, dry run"
# The GPU proof script's dry run (tools/gpu/README.md) on the build folder just built (nothing is rebuilt):
# argument handling, each program's no-device path and the result writer; every phase ok or skipped.
proof_out=$(mktemp -d)
bash tools/gpu/proof.sh "$proof_out" --dry-run --build-dir "$build" | tail -n 14
python3 tools/gpu/result.py check "$proof_out"
rm -rf "$proof_out"
bash tools/gpu/stub_test.sh  # its real-run path, with stand-ins for the GPU programs

stamp "fuzzer build"
fuzz_build="${build}-fuzz"
# The fuzzers only: the examples and benchmarks are built (with g++) by tools/build.sh above.
CXX=clang++ cmake -S . -B "$fuzz_build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNEXUS_BUILD_FUZZERS=ON \
  -DNEXUS_BUILD_TESTS=OFF -DNEXUS_BUILD_TOOLS=OFF -DNEXUS_BUILD_EXAMPLES=OFF -DNEXUS_BUILD_BENCH=OFF \
  -DNEXUS_BUILD_PYTHON=OFF -DNEXUS_ENABLE_CUDA=OFF >/dev/null
cmake --build "$fuzz_build" -j"$(nproc)"
stamp "fuzzer runs"
seconds="${NEXUS_FUZZ_SECONDS:-60}"
seeds_st="$fuzz_build/corpus-safetensors" seeds_cfg="$fuzz_build/corpus-config"
mkdir -p "$seeds_st" "$seeds_cfg"
for d in tests/data/models/*/; do
  name=$(basename "$d")
  cp "$d"/config.json "$seeds_cfg/model-$name.json"
  for f in "$d"/*.safetensors; do cp "$f" "$seeds_st/$name-$(basename "$f")"; done
done
for d in tests/data/configs/*/; do cp "$d"/config.json "$seeds_cfg/$(basename "$d").json"; done
seeds_tok="$fuzz_build/corpus-tokenizer"
mkdir -p "$seeds_tok"
head -n 200 tests/data/tokenizers/gpt2/cases.jsonl | split -l 20 - "$seeds_tok/case-"
seeds_gguf="$fuzz_build/corpus-gguf"
mkdir -p "$seeds_gguf"
cp tests/data/gguf/*.gguf "$seeds_gguf/"
seeds_bundle="$fuzz_build/corpus-bundle"
mkdir -p "$seeds_bundle"
sha=$(printf '%064d' 0)
printf '{"format":"nexus.bundle","version":1,"budget_bytes":0,"teachers":[{"name":"a","file":"a.gguf","bytes":1,"sha256":"%s","source":{"kind":"path","path":"a.gguf"}},{"name":"b","file":"b.gguf","bytes":2,"sha256":"%s","source":{"kind":"pypi","package":"b==1"}}],"mixture":{"kind":"linear","weights":"w"},"cascade":{"order":[1,0],"thresholds":"t"},"router":{"prefix_bytes":64,"weight":"rw","bias":"rb"},"bridges":[{"name":"x","prefix":"bridge.0."}]}' "$sha" "$sha" >"$seeds_bundle/full.json"
printf '{"format":"nexus.bundle","version":1,"budget_bytes":5,"teachers":[{"name":"e","file":"e.gguf","bytes":3,"sha256":"%s","source":{"kind":"embedded","tensor":"teacher.0"}}]}' "$sha" >"$seeds_bundle/embedded.json"
# Each fuzzer is single-threaded: $(nproc) of them run side by side, each for ${seconds} s on a core
# of its own. A crash makes libFuzzer exit non-zero and leaves the input as crash-* for reproduction.
fuzzers=(
  "fuzz_safetensors 8192 $seeds_st"
  "fuzz_config 4096 $seeds_cfg"
  "fuzz_tokenizer 2048 $seeds_tok"
  "fuzz_gguf 32768 $seeds_gguf"
  "fuzz_bundle 4096 $seeds_bundle"
)
failed=()
for ((first = 0; first < ${#fuzzers[@]}; first += $(nproc))); do
  batch=("${fuzzers[@]:first:$(nproc)}") pids=()
  for f in "${batch[@]}"; do
    read -r name max_len seeds <<<"$f"
    "$fuzz_build/tests/fuzz/$name" -max_total_time="$seconds" -max_len="$max_len" -print_final_stats=1 "$seeds" \
      >"$fuzz_build/$name.log" 2>&1 &
    pids+=($!)
  done
  for i in "${!batch[@]}"; do
    read -r name _ <<<"${batch[$i]}"
    if wait "${pids[$i]}"; then
      tail -n 4 "$fuzz_build/$name.log"
    else
      tail -n 60 "$fuzz_build/$name.log"
      failed+=("$name")
    fi
  done
done
if ((${#failed[@]})); then
  echo "fuzzers: ${failed[*]} failed (the whole output: $fuzz_build/NAME.log)" >&2
  exit 1
fi
echo "fuzzers: ${seconds}s each, no crash"
stamp "done"
