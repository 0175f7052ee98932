#!/usr/bin/env bash
# The real-device path of tools/gpu/proof.sh, on a machine without a GPU: stand-ins for nvidia-smi,
# compute-sanitizer and the three programs (each writes what the real one writes, in miniature) make the
# script take its real-run branches: result files, the e2e fallback to the decode records, a failing
# phase that does not stop the others, a phase stopped at its time limit that keeps what it wrote,
# --only, --archive, and the exit status. About 10 s. Run by tools/test.sh.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/path" "$work/pack/bin" "$work/models"

cat >"$work/path/nvidia-smi" <<'EOF'
#!/bin/bash
echo "NVIDIA H100 80GB HBM3, 580.159.04"
EOF
cat >"$work/path/compute-sanitizer" <<'EOF'
#!/bin/bash
while [[ "$1" == --* ]]; do shift 2; done
"$@"
rc=$?
echo "========= ERROR SUMMARY: 0 errors"
exit $rc
EOF
cat >"$work/pack/bin/nexus_cuda_tests" <<'EOF'
#!/bin/bash
out=""
while [ $# -gt 0 ]; do [ "$1" = -o ] && out="$2"; shift; done
[ -d "$NEXUS_TEST_DATA/models" ] || { echo "no test data at $NEXUS_TEST_DATA"; exit 3; }
if [ -n "${NEXUS_CUDA_REPORT:-}" ]; then
  echo '{"check":"fp32_parity","fixture":"llama","family":"llama","ok":true,"rows":[],"vs_cpu_logits":{"max_abs":1e-6,"max_ref":3,"nmse":1e-13}}' >>"$NEXUS_CUDA_REPORT"
  echo '{"check":"low_precision","fixture":"llama","family":"llama","precision":"bf16","nmse":0.0002,"bound":0.001,"ok":true}' >>"$NEXUS_CUDA_REPORT"
fi
printf '<?xml version="1.0"?>\n<testsuites><testsuite name="t" tests="1" failures="0" errors="0"><testcase name="c" time="0.1"/></testsuite></testsuites>\n' >"$out"
EOF
cat >"$work/pack/bin/cuda_bench" <<'EOF'
#!/bin/bash
out="" shape=""
while [ $# -gt 0 ]; do case "$1" in --out) out="$2" ;; --shape) shape="$2" ;; esac; shift; done
[ "$shape" = no-such-model ] && exit 2
echo "{\"status\": \"ok\", \"shape\": \"$shape\", \"decode_ms_per_token\": 1.5, \"decode_fraction_of_measured_bandwidth\": 0.8}" >"$out"
EOF
cat >"$work/pack/bin/gpu_bench" <<'EOF'
#!/bin/bash
out="" sub=""
while [ $# -gt 0 ]; do case "$1" in --out) out="$2"; shift ;; bandwidth | gemm | attention | norm-rope) sub="$1" ;; esac; shift; done
case "$sub" in
  bandwidth) echo '{"status":"ok","spec_hbm_gb_per_s":3352,"bandwidth":{"copy_kernel_gb_per_s":2950}}' >"$out" ;;
  gemm) echo '{"status":"ok","gemm":{"worst_fraction_of_cublaslt_best":0.93}}' >"$out" ;;
  attention) echo '{"status":"ok","attention":{"runs":[{"tokens":512,"tflops":5}]}}' >"$out"; sleep 60 ;;  # stopped at its limit
  norm-rope) echo "cuda: out of memory" >&2; exit 1 ;;
esac
EOF
chmod +x "$work"/path/* "$work"/pack/bin/*
echo stub >"$work/pack/COMMIT"

out="$work/out"
set +e
PATH="$work/path:$PATH" NEXUS_MODELS="$work/models" bash "$root/tools/gpu/proof.sh" "$out" --build-dir "$work/pack" \
  --phase-seconds 3 --archive "$work/proof.tgz" >"$work/log" 2>&1
rc=$?
set -e
fail() { echo "stub_test: $*" >&2; cat "$work/log" >&2; exit 1; }
[ "$rc" = 1 ] || fail "exit $rc, expected 1 (a phase failed)"
status() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["status"])' "$out/$1.json"; }
for p in memcheck racecheck parity accuracy bandwidth decode gemm e2e; do
  [ "$(status "$p")" = ok ] || fail "$p: $(status "$p"), expected ok"
done
[ "$(status build)" = skipped ] || fail "build: $(status build), expected skipped (a pack)"
[ "$(status norm_rope)" = failed ] || fail "norm_rope: $(status norm_rope), expected failed"
[ "$(status attention)" = timed_out ] || fail "attention: $(status attention), expected timed_out"
python3 - "$out" <<'EOF' || fail "the records"
import json, sys
out = sys.argv[1]
load = lambda name: json.load(open(f"{out}/{name}.json"))
a = load("attention")
assert a["raw"]["attention.json"]["attention"]["runs"][0]["tflops"] == 5, "a stopped phase keeps what it wrote"
assert a["device"] == "NVIDIA H100 80GB HBM3" and a["driver"] == "580.159.04" and a["mode"] == "real"
assert a["command"] and "gpu_bench" in a["command"][0]
assert "out of memory" in load("norm_rope")["reason"]
assert sorted(load("e2e")["raw"]) == ["random-weights-llama-3.2-1b.json", "random-weights-qwen2.5-0.5b.json"]
assert load("accuracy")["raw"]["records.jsonl"][1]["nmse"] == 0.0002
assert load("memcheck")["raw"]["sanitizer.json"]["errors"] == 0
s = load("summary")
heads = {p["phase"]: p["headline"] for p in s["phases"]}
assert heads["gemm"]["worst_fraction_of_cublaslt_best"] == 0.93
assert heads["decode"]["llama-3.2-1b"]["decode_fraction_of_measured_bandwidth"] == 0.8
assert heads["parity"]["families"] == ["llama"] and heads["parity"]["failed"] == []
assert not s["all_ok_or_skipped"]
EOF
python3 "$root/tools/gpu/result.py" markdown "$out" >"$work/table.md" || fail "result.py markdown"
grep -q '| projection GEMMs, worst fraction of cuBLASLt.s best (ok) | 0.93 | 0.9 | yes |' "$work/table.md" ||
  fail "the Markdown table: $(cat "$work/table.md")"
tar -tzf "$work/proof.tgz" >"$work/listing" || fail "cannot list the archive"
grep -q summary.json "$work/listing" || fail "no summary.json in the archive"
echo "stub_test: proof.sh's real-run path: 11 phases recorded, failure and time limit kept to their phase"
