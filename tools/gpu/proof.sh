#!/usr/bin/env bash
# The CUDA backend on a real GPU, in one script (issue 23): build (or use programs carried along),
# the CUDA tests under compute-sanitizer (memcheck, racecheck) on a subset of fixtures, fp32 parity of
# every fixture family (against transformers within the CPU bounds, and against the CPU path's
# logits), the bf16/fp16 accuracy bounds (NMSE ≤ 1e-3 / 1e-4 against fp32), then the benchmarks, each
# against a ceiling measured on the same device in the same run: copy-kernel HBM bandwidth, decode
# step at batch 1 (CUDA graph) of random-weight bf16 Llama-3.2-1B / Qwen2.5-0.5B shapes, projection
# GEMMs against cuBLASLt's best algorithm, causal prefill attention (head_dim 128; 512/2k/8k tokens),
# fused norm and RoPE kernels, and end to end (tools/gpu/README.md).
#
#   tools/gpu/proof.sh OUT_DIR [--dry-run] [--phase-seconds N] [--total-seconds N] [--build-dir DIR]
#                              [--no-build] [--only PHASE,...] [--archive FILE]
#   tools/gpu/proof.sh --pack DIR [--build-dir B]     here, before a device run: build the three programs
#                                                      in B and pack them (stripped, with their libraries
#                                                      and the commit) into DIR, to be carried
#
# Writes OUT_DIR/<phase>.json for each phase (device, driver, commit, command lines, wall seconds, status
# ok | failed | timed_out | skipped-no-device | skipped-..., and its raw numbers, from OUT_DIR/raw/<phase>/),
# then OUT_DIR/summary.json and a table. Each phase runs under `timeout` (its own limit, capped by what is
# left of --total-seconds) and writes what it has when stopped; a failed phase never stops the others.
# Without nvidia-smi or a device (or with --dry-run) it builds what it can, runs each phase's argument
# handling (the programs' no-device path, exit 77, and a rejected bad argument) and the result writer,
# records `skipped-no-device` with the reason, and exits 0 when nothing failed.
#
# Expected duration of a real run on an H100/H200 with the programs carried (--pack): about 4 minutes
# (sanitizers about 1.5, parity and accuracy 0.5, bandwidth/decode/GEMM/attention/norm 2), at most
# --total-seconds (default 540) — plus about 1.5 minutes to start the device machine. Building there
# instead adds 3-6 minutes and needs the Debian packages of tools/setup.sh, which the GPU image lacks.
# The dry run here takes about 10 s after the build.
# shellcheck disable=SC2154  # PROOF_BIN_* reach the phases' bodies from locate_programs (the driver, below)
set -uo pipefail

self="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
root="$(cd "$(dirname "$self")/../.." && pwd)"
phases=(build memcheck racecheck parity accuracy bandwidth decode gemm attention norm_rope e2e)
# Each phase's own limit in seconds (--phase-seconds N sets every one but build's).
declare -A limit=([build]=480 [memcheck]=90 [racecheck]=60 [parity]=90 [accuracy]=60 [bandwidth]=30
                  [decode]=120 [gemm]=90 [attention]=60 [norm_rope]=30 [e2e]=120)
# The sanitizers' subset: three fixtures of different families (a dense GQA model, biases, softcap + sliding window).
sanitizer_fixtures="llama,qwen2,gemma2"

usage() { sed -n '10,16p' "$self" | sed 's/^# \{0,1\}//' >&2; exit 2; }
die() { echo "proof: $*" >&2; exit 2; }

# ---- one phase's body, run by the driver below as `timeout ... proof.sh --phase NAME` -----------------
# Environment: PROOF_DRY (1: no device), PROOF_RAW (this phase's raw folder), PROOF_BIN_* (the programs).
# Exit status: 0 ok, 77 skipped for want of a device, 78 skipped for another reason (first line of
# $PROOF_RAW/skip.txt), anything else failed.

log_cmd() { printf '%s\n' "$*" >>"$PROOF_RAW/commands.txt"; }
# Runs a command, recording its line; its output goes to the phase's log.
run() { log_cmd "$*"; "$@"; }
skip() { echo "$*" >"$PROOF_RAW/skip.txt"; exit 78; }

# A program rejects a bad argument with a usage error (not the no-device 77): the dry run's argument check.
expect_usage_error() {
  log_cmd "$* (expected: usage error)"
  "$@" >/dev/null 2>&1
  local rc=$?
  if [ "$rc" = 0 ] || [ "$rc" = 77 ]; then echo "argument check: '$*' exited $rc, not a usage error"; return 1; fi
  echo "argument check: '$*' rejected (exit $rc)"
}

need_bin() {
  local var="PROOF_BIN_$1"
  if [ -n "${!var:-}" ] && [ -x "${!var}" ]; then return; fi
  skip "program $1 not built (no CUDA in this build, or the build failed)"
}

# The no-device path of a program: exit 77 and a JSON record saying so.
dry_program() {
  local out="$1"; shift
  run "$@" --out "$out"
  local rc=$?
  [ "$rc" = 77 ] || { echo "dry run: '$*' exited $rc, expected 77 (no device)"; return 1; }
  grep -q '"no-device"' "$out" || { echo "dry run: $out does not say no-device"; return 1; }
  return 77
}

sanitizer_bin() {
  command -v compute-sanitizer 2>/dev/null && return
  local c
  for c in /usr/local/cuda/bin/compute-sanitizer /usr/local/cuda/compute-sanitizer/compute-sanitizer; do
    [ -x "$c" ] && { echo "$c"; return; }
  done
  return 1
}

phase_sanitizer() {  # $1: memcheck | racecheck
  local tool="$1" tests fixtures
  need_bin nexus_cuda_tests
  local cs
  cs=$(sanitizer_bin) || { [ "$PROOF_DRY" = 1 ] && exit 77; skip "compute-sanitizer not found"; }
  if [ "$tool" = memcheck ]; then
    tests="" fixtures="$sanitizer_fixtures"  # every test case, three fixtures
  else
    # racecheck (shared-memory hazards) is slower: the kernels with block-level shared memory
    # (attention's warp combine, the norms' block reductions, CUB's arg-max) on one fixture, and the bridges.
    tests="CUDA bf16 and fp16 stay close to the fp32 reference,CUB arg-max equals the host arg-max,CUDA bridges match the CPU reference*"
    fixtures="llama"
  fi
  [ "$PROOF_DRY" = 1 ] && { log_cmd "$cs --tool $tool --error-exitcode 99 $PROOF_BIN_nexus_cuda_tests $tests"; exit 77; }
  log_cmd "NEXUS_CUDA_FIXTURES=$fixtures $cs --tool $tool --error-exitcode 99 $PROOF_BIN_nexus_cuda_tests $tests -r junit -o $PROOF_RAW/junit.xml"
  local args=()
  [ -n "$tests" ] && args+=("$tests")
  # A record before the run, replaced after it: a run stopped at its limit still says what it was.
  printf '{"tool": "%s", "exit_code": null, "errors": null, "fixtures": "%s", "tests": "%s", "complete": false}\n' \
    "$tool" "$fixtures" "${tests:-all}" >"$PROOF_RAW/sanitizer.json"
  NEXUS_CUDA_FIXTURES="$fixtures" "$cs" --tool "$tool" --error-exitcode 99 --print-limit 50 \
    "$PROOF_BIN_nexus_cuda_tests" "${args[@]}" -r junit -o "$PROOF_RAW/junit.xml" >"$PROOF_RAW/sanitizer.txt" 2>&1
  local rc=$?
  local errors
  errors=$(grep -o 'ERROR SUMMARY: [0-9]*' "$PROOF_RAW/sanitizer.txt" | tail -n 1 | grep -o '[0-9]*$')
  printf '{"tool": "%s", "exit_code": %d, "errors": %s, "fixtures": "%s", "tests": "%s", "complete": true}\n' \
    "$tool" "$rc" "${errors:-null}" "$fixtures" "${tests:-all}" >"$PROOF_RAW/sanitizer.json"
  tail -n 40 "$PROOF_RAW/sanitizer.txt"
  return "$rc"
}

phase_tests() {  # $1: parity | accuracy
  need_bin nexus_cuda_tests
  local spec
  # (Catch2 splits a test spec at commas: the fp32 case's name has one, hence the wildcard.)
  if [ "$1" = parity ]; then spec="CUDA fp32 matches transformers within the CPU parity bounds*"
  else spec="CUDA bf16 and fp16 stay close to the fp32 reference"; fi
  # Without a device the program exits 77 before any test: its whole no-device path.
  log_cmd "NEXUS_CUDA_REPORT=$PROOF_RAW/records.jsonl $PROOF_BIN_nexus_cuda_tests '$spec' -r junit -o $PROOF_RAW/junit.xml"
  NEXUS_CUDA_REPORT="$PROOF_RAW/records.jsonl" "$PROOF_BIN_nexus_cuda_tests" "$spec" -r junit -o "$PROOF_RAW/junit.xml"
}

phase_body() {
  local name="$1"
  export NEXUS_TEST_DATA="$root/tests/data"  # the source tree here, wherever the programs were built
  case "$name" in
    build) phase_build ;;
    memcheck | racecheck) phase_sanitizer "$name" ;;
    parity | accuracy) phase_tests "$name" ;;
    bandwidth)
      need_bin gpu_bench
      if [ "$PROOF_DRY" = 1 ]; then
        expect_usage_error "$PROOF_BIN_gpu_bench" bandwidth --bytes 17 || return 1
        dry_program "$PROOF_RAW/bandwidth.json" "$PROOF_BIN_gpu_bench" bandwidth; return
      fi
      run "$PROOF_BIN_gpu_bench" --out "$PROOF_RAW/bandwidth.json" bandwidth ;;
    decode)
      need_bin cuda_bench
      local shape rc=0
      for shape in llama-3.2-1b qwen2.5-0.5b; do
        if [ "$PROOF_DRY" = 1 ]; then
          expect_usage_error "$PROOF_BIN_cuda_bench" --shape no-such-model || return 1
          dry_program "$PROOF_RAW/$shape.json" "$PROOF_BIN_cuda_bench" --shape "$shape" --precision bf16 --prompt 512 --decode 128
          [ $? = 77 ] || return 1
          rc=77; continue
        fi
        run "$PROOF_BIN_cuda_bench" --shape "$shape" --precision bf16 --prompt 512 --decode 128 \
          --out "$PROOF_RAW/$shape.json" || rc=1
      done
      return "$rc" ;;
    gemm | attention | norm_rope)
      need_bin gpu_bench
      local sub="${name/_/-}" args=()
      case "$name" in
        gemm) args=(--rows "1,512") ;;
        attention) args=(--tokens "512,2048,8192") ;;
        norm_rope) args=(--rows 8192) ;;
      esac
      if [ "$PROOF_DRY" = 1 ]; then
        case "$name" in
          gemm) expect_usage_error "$PROOF_BIN_gpu_bench" gemm --rows 0 || return 1 ;;
          attention) expect_usage_error "$PROOF_BIN_gpu_bench" attention --tokens 512,x || return 1 ;;
          norm_rope) expect_usage_error "$PROOF_BIN_gpu_bench" norm-rope --rows -3 || return 1 ;;
        esac
        dry_program "$PROOF_RAW/$name.json" "$PROOF_BIN_gpu_bench" "$sub" "${args[@]}"; return
      fi
      run "$PROOF_BIN_gpu_bench" --out "$PROOF_RAW/$name.json" "$sub" "${args[@]}" ;;
    e2e)
      need_bin cuda_bench
      # The real GGUF files when they were carried (SmolLM2 Q4_1 and Gemma 3 Q4_K_M are about 350 MB together,
      # over the device tool's 64 MiB); otherwise the random-weight models' load + prefill 512 + decode 128
      # from the decode phase, which are this run's end-to-end figures.
      local models="${NEXUS_MODELS:-$HOME/.cache/nexus/models}" f found=0 rc=0
      for f in "$models/SmolLM2-135M-Instruct.Q4_1.gguf" "$models/gemma-3-270m-q4_k_m.gguf"; do
        [ -f "$f" ] || continue
        found=1
        if [ "$PROOF_DRY" = 1 ]; then
          dry_program "$PROOF_RAW/$(basename "$f" .gguf).json" "$PROOF_BIN_cuda_bench" --model "$f" --precision bf16
          [ $? = 77 ] || return 1
          rc=77; continue
        fi
        run "$PROOF_BIN_cuda_bench" --model "$f" --precision bf16 --prompt 512 --decode 128 \
          --out "$PROOF_RAW/$(basename "$f" .gguf).json" || rc=1
      done
      [ "$found" = 1 ] && return "$rc"
      [ "$PROOF_DRY" = 1 ] && { echo "no GGUF files in $models; the random-weight models' figures come from decode"; return 77; }
      local decode_raw="$PROOF_OUT/raw/decode" any=0
      for f in "$decode_raw"/*.json; do
        [ -f "$f" ] || continue
        grep -q '"status": "ok"' "$f" || continue
        cp "$f" "$PROOF_RAW/random-weights-$(basename "$f")" && any=1
      done
      [ "$any" = 1 ] || skip "no GGUF files in $models and no decode figures to report end to end"
      echo "end to end: random-weight models (the decode phase's run: load, prefill 512, decode 128)" ;;
    *) die "unknown phase '$name'" ;;
  esac
}

phase_build() {
  local targets=(nexus_cuda_tests cuda_bench gpu_bench) b="$PROOF_BUILD"
  if [ "$PROOF_NO_BUILD" = 1 ]; then skip "--no-build: using the programs in $b as they are"; fi
  [ -d /usr/local/cuda/bin ] && export PATH="/usr/local/cuda/bin:$PATH"
  if [ -f "$b/CMakeCache.txt" ]; then
    local home
    home=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$b/CMakeCache.txt")
    if [ "$home" != "$root" ]; then
      [ -x "$b/tests/nexus_cuda_tests" ] && skip "prebuilt: $b was configured for $home; its programs are used as they are"
      echo "$b was configured for $home, not $root, and holds no programs"; return 1
    fi
    grep -q '^NEXUS_ENABLE_CUDA:BOOL=ON' "$b/CMakeCache.txt" || skip "CUDA is off in $b (no nvcc when it was configured)"
  elif [ -d "$b/bin" ] || [ -f "$b/programs.tar.xz" ]; then
    skip "prebuilt: the pack in $b (tools/gpu/proof.sh --pack), commit $(cat "$b/COMMIT" 2>/dev/null || echo unknown)"
  else
    command -v nvcc >/dev/null || skip "no nvcc: nothing to build the CUDA programs with"
    run cmake -S "$root" -B "$b" -DCMAKE_BUILD_TYPE=Release -DNEXUS_CUDA_ARCHS=90 -DNEXUS_BUILD_TOOLS=OFF \
      -DNEXUS_BUILD_EXAMPLES=OFF || return 1
    grep -q '^NEXUS_ENABLE_CUDA:BOOL=ON' "$b/CMakeCache.txt" || skip "CUDA is off in $b (CMake found no nvcc)"
  fi
  run cmake --build "$b" -j"$(nproc)" --target "${targets[@]}"
}

if [ "${1:-}" = "--phase" ]; then
  phase_body "$2"
  exit $?
fi

# ---- pack: the three programs, stripped, with their non-system libraries, for the device tool's carry ----
# DIR/programs.tar.xz (bin/, lib/; xz: the programs shrink about sixfold) and DIR/COMMIT. The driver
# unpacks it into a temporary folder (not DIR: the pack stays small enough to carry).
pack() {
  local dir="$1" b="$2"
  [ -d /usr/local/cuda/bin ] && export PATH="/usr/local/cuda/bin:$PATH"
  cmake --build "$b" -j"$(nproc)" --target nexus_cuda_tests cuda_bench gpu_bench || die "build failed in $b"
  rm -rf "$dir" && mkdir -p "$dir/stage/bin" "$dir/stage/lib"
  local p lib
  for p in "$b/tests/nexus_cuda_tests" "$b/bench/cuda_bench" "$b/bench/gpu_bench"; do
    strip -o "$dir/stage/bin/$(basename "$p")" "$p" || die "strip $p"
    # Libraries the GPU image may lack: all but the C/C++ runtime and the driver's and cuBLAS's (those are
    # there with the CUDA toolkit; cuBLASLt is far over the carry limit).
    ldd "$p" | awk '/=> \//{print $3}' | while read -r lib; do
      case "$(basename "$lib")" in
        libc.so* | libm.so* | libstdc++* | libgcc_s* | libdl.so* | libpthread* | librt.so* | ld-linux* | libcuda.so* | libcublas*) ;;
        *) cp -Lu "$lib" "$dir/stage/lib/" ;;
      esac
    done
  done
  tar -C "$dir/stage" -cJf "$dir/programs.tar.xz" bin lib || die "tar"
  rm -rf "$dir/stage"
  { git -C "$root" rev-parse HEAD 2>/dev/null || echo unknown; } | tr -d '\n' >"$dir/COMMIT"
  [ -z "$(git -C "$root" status --porcelain --untracked-files=no 2>/dev/null)" ] || printf ' (dirty)' >>"$dir/COMMIT"
  echo >>"$dir/COMMIT"
  local tree packed
  tree=$(git -C "$root" ls-files -z | (cd "$root" && xargs -0 du -cb 2>/dev/null) | tail -n 1 | cut -f1)
  packed=$(du -sb "$dir" | cut -f1)
  tar -tJvf "$dir/programs.tar.xz"
  echo "packed $dir ($(cat "$dir/COMMIT")): $((packed / 1024)) KiB; with the tracked tree $(((tree + packed) / 1048576)) MiB of the device tool's 64"
  [ $((tree + packed)) -lt $((64 * 1048576)) ] || echo "proof: warning: over the 64 MiB the device tool carries" >&2
}

unpack() {  # a pack's programs into $prog_dir (Python's tarfile: the GPU image may lack xz)
  [ -f "$1/programs.tar.xz" ] || return 0
  prog_dir=$(mktemp -d "${TMPDIR:-/tmp}/nexus-proof-programs.XXXXXX") || die "mktemp"
  python3 - "$1/programs.tar.xz" "$prog_dir" <<'PY' || die "cannot unpack $1/programs.tar.xz"
import sys, tarfile
with tarfile.open(sys.argv[1]) as t:
    try:
        t.extractall(sys.argv[2], filter="fully_trusted")
    except TypeError:  # Python before 3.12
        t.extractall(sys.argv[2])
PY
}

# ---- the driver ----------------------------------------------------------------------------------------
out="" dry=0 phase_seconds="" total=540 build_dir="" no_build=0 only="" archive="" pack_dir=""
args_text="$*"
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) dry=1 ;;
    --phase-seconds) [ $# -ge 2 ] || usage; phase_seconds="$2"; shift ;;
    --total-seconds) [ $# -ge 2 ] || usage; total="$2"; shift ;;
    --build-dir) [ $# -ge 2 ] || usage; build_dir="$2"; shift ;;
    --no-build) no_build=1 ;;
    --only) [ $# -ge 2 ] || usage; only="$2"; shift ;;
    --archive) [ $# -ge 2 ] || usage; archive="$2"; shift ;;
    --pack) [ $# -ge 2 ] || usage; pack_dir="$2"; shift ;;
    -h | --help) usage ;;
    -*) echo "proof: unknown option '$1'" >&2; usage ;;
    *) [ -z "$out" ] || die "one OUT_DIR, not '$out' and '$1'"; out="$1" ;;
  esac
  shift
done
case "$phase_seconds" in "" | *[!0-9]*) [ -z "$phase_seconds" ] || die "--phase-seconds takes whole seconds, not '$phase_seconds'" ;; esac
case "$total" in "" | *[!0-9]*) die "--total-seconds takes whole seconds, not '$total'" ;; esac
[ "${phase_seconds:-1}" -gt 0 ] || die "--phase-seconds must be positive"
for p in ${only//,/ }; do [ -n "${limit[$p]:-}" ] || die "--only: no phase '$p' (${phases[*]})"; done
build_dir="${build_dir:-$root/build-gpu}"
case "$build_dir" in /*) ;; *) build_dir="$PWD/$build_dir" ;; esac
if [ -n "$pack_dir" ]; then
  [ -z "$out" ] || die "--pack DIR takes no OUT_DIR"
  case "$pack_dir" in /*) ;; *) pack_dir="$PWD/$pack_dir" ;; esac
  pack "$pack_dir" "$build_dir"
  exit 0
fi
[ -n "$out" ] || usage
mkdir -p "$out" || die "cannot create $out"
out="$(cd "$out" && pwd)"
command -v python3 >/dev/null || die "needs python3 (the result writer, tools/gpu/result.py)"
command -v timeout >/dev/null || die "needs timeout (coreutils)"

# The device, or why there is none (then a dry run).
device="none" driver="none" reason=""
if [ "$dry" = 1 ]; then reason="--dry-run: no device used"
elif ! command -v nvidia-smi >/dev/null; then dry=1 reason="no nvidia-smi on this machine"
elif ! q=$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>&1) || [ -z "$q" ]; then
  dry=1 reason="nvidia-smi finds no device: ${q:-no output}"
else
  q=$(head -n 1 <<<"$q"); device="${q%%, *}" driver="${q##*, }"
fi
commit=$(git -C "$root" rev-parse HEAD 2>/dev/null || cat "$build_dir/COMMIT" 2>/dev/null || echo unknown)
[ -n "$(git -C "$root" status --porcelain --untracked-files=no 2>/dev/null)" ] && commit="$commit (dirty)"
export PROOF_DEVICE="$device" PROOF_DRIVER="$driver" PROOF_COMMIT="$commit" PROOF_ARGS="tools/gpu/proof.sh $args_text"
mode=real
[ "$dry" = 1 ] && mode="dry-run"
export PROOF_MODE="$mode" PROOF_DRY="$dry" PROOF_OUT="$out"
export PROOF_BUILD="$build_dir" PROOF_NO_BUILD="$no_build"
prog_dir="$build_dir"
unpack "$build_dir"
[ -d "$prog_dir/lib" ] && export LD_LIBRARY_PATH="$prog_dir/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

locate_programs() {  # the build folder's layout, or a pack's bin/
  local name dir
  for name in nexus_cuda_tests cuda_bench gpu_bench; do
    unset "PROOF_BIN_$name"
    for dir in "$prog_dir/bin" "$build_dir/tests" "$build_dir/bench"; do
      [ -x "$dir/$name" ] && { export "PROOF_BIN_$name=$dir/$name"; break; }
    done
  done
  # cuBLASLt comes from the machine: where the dynamic loader does not find it, look where CUDA and
  # PyTorch's wheels put it.
  if [ -n "${PROOF_BIN_gpu_bench:-}" ] && ldd "$PROOF_BIN_gpu_bench" 2>/dev/null | grep -q 'libcublasLt.*not found'; then
    local lib
    lib=$(find /usr/local/cuda*/ /usr/lib /opt -name 'libcublasLt.so.1[0-9]*' 2>/dev/null | head -n 1)
    [ -n "$lib" ] && LD_LIBRARY_PATH="$(dirname "$lib")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" && export LD_LIBRARY_PATH
  fi
}

echo "proof: $PROOF_MODE${reason:+ ($reason)}; device $device, driver $driver; commit $commit; out $out"
start=$SECONDS
locate_programs
for p in "${phases[@]}"; do
  if [ -n "$only" ] && [[ ",$only," != *",$p,"* ]]; then
    mkdir -p "$out/raw/$p"
    python3 "$root/tools/gpu/result.py" phase "$out" "$p" skipped-not-selected 0 0 0 "not in --only $only"
    continue
  fi
  lim="${limit[$p]}"
  [ -n "$phase_seconds" ] && [ "$p" != build ] && lim="$phase_seconds"
  left=$((total - (SECONDS - start)))
  [ "$lim" -le "$left" ] || lim="$left"
  raw="$out/raw/$p"
  rm -rf "$raw" && mkdir -p "$raw"
  t0=$EPOCHREALTIME
  if [ "$lim" -le 0 ]; then
    lim=0 rc=124
    echo "no time left of --total-seconds $total" >"$raw/log.txt"
  else
    PROOF_RAW="$raw" timeout -k 10 "$lim" bash "$self" --phase "$p" >"$raw/log.txt" 2>&1
    rc=$?
  fi
  wall=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }')
  why=""
  case "$rc" in
    0) status=ok ;;
    77) status=skipped-no-device why="${reason:-no CUDA device}" ;;
    78) status=skipped why=$(head -n 1 "$raw/skip.txt" 2>/dev/null) ;;
    124 | 137)
      status=timed_out why="stopped at its limit of ${lim} s"
      [ "$lim" = 0 ] && why="not started: no time left of --total-seconds $total" ;;
    *)
      last=$(grep -v '^ *$' "$raw/log.txt" | tail -n 1 | cut -c1-200)
      status=failed why="exit $rc${last:+: $last}" ;;
  esac
  [ "$p" = build ] && locate_programs
  python3 "$root/tools/gpu/result.py" phase "$out" "$p" "$status" "$rc" "$wall" "$lim" "$why" ||
    echo "proof: the result writer failed for $p" >&2
  echo "proof: $p: $status${why:+ ($why)}"
done
python3 "$root/tools/gpu/result.py" summary "$out"
if [ -n "$archive" ]; then
  tar -C "$out" -czf "$archive" . && echo "proof: archive $archive"
fi
python3 "$root/tools/gpu/result.py" check "$out" >/dev/null
rc=$?
[ "$prog_dir" = "$build_dir" ] || rm -rf "$prog_dir"
exit "$rc"
