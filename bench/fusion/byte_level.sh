#!/usr/bin/env bash
# Byte-level vs canonical-token scoring of the two real teachers on the first ~600 bytes of
# bench/fusion/english.txt (the GPL-3 preamble, English prose): `nexus score --end --json`, written
# with the command, machine and versions to bench/results/byte-level.json.
#   bash bench/fusion/byte_level.sh [BUILD_DIR] [BEFORE_BUILD_DIR]
# BUILD_DIR (default build) needs the nexus target. With BEFORE_BUILD_DIR (another build, e.g. of an
# older commit) each teacher also runs there first, back to back, and the JSON holds both runs and
# the speed-up. NEXUS_THREADS: CPU threads (default 2).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
build="${1:-build}"
before="${2:-}"
threads="${NEXUS_THREADS:-2}"
models="${NEXUS_MODELS:-$HOME/.cache/nexus/models}"
tmp=$(mktemp -d)
python3 - "$tmp/text.txt" <<'PY'
import sys
d = open("bench/fusion/english.txt", "rb").read()[:600]
open(sys.argv[1], "wb").write(d[:d.rindex(b" ")])
PY
for m in SmolLM2-135M-Instruct.Q4_1.gguf gemma-3-270m-q4_k_m.gguf; do
  if [ -n "$before" ]; then
    "$before/nexus" score "$models/$m" --text "$tmp/text.txt" --end --json --threads "$threads" > "$tmp/before-$m.json"
  fi
  "$build/nexus" score "$models/$m" --text "$tmp/text.txt" --end --json --threads "$threads" > "$tmp/$m.json"
done
python3 - "$tmp" "$threads" "$before" <<'PY'
import json, platform, subprocess, sys, os
tmp, threads, before = sys.argv[1], sys.argv[2], sys.argv[3]
names = ["SmolLM2-135M-Instruct.Q4_1.gguf", "gemma-3-270m-q4_k_m.gguf"]
runs = [json.load(open(os.path.join(tmp, m + ".json"))) for m in names]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
out = {"command": "bash bench/fusion/byte_level.sh" + (" build BEFORE_BUILD" if before else ""),
       "text": "bench/fusion/english.txt, first 598 bytes (cut at a space)", "threads": int(threads),
       "machine": {"cpu": cpu, "cores": os.cpu_count(), "os": platform.platform(),
                   "load_average": os.getloadavg()},
       "versions": {"nexus": subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip(),
                    "compiler": subprocess.run(["c++", "--version"], capture_output=True, text=True).stdout.splitlines()[0]},
       "runs": runs}
if before:
    out["before"] = {"build": before, "runs": [json.load(open(os.path.join(tmp, "before-" + m + ".json"))) for m in names]}
    out["speedup_bytes_per_second"] = {
        m: r["byte_level"]["bytes_per_second"] / b["byte_level"]["bytes_per_second"]
        for m, r, b in zip(names, runs, out["before"]["runs"])}
    out["log_likelihood_relative_change"] = {
        m: (r["byte_level"]["log_likelihood"] - b["byte_level"]["log_likelihood"]) / abs(b["byte_level"]["log_likelihood"])
        for m, r, b in zip(names, runs, out["before"]["runs"])}
json.dump(out, open("bench/results/byte-level.json", "w"), indent=2)
print(json.dumps({k: out[k] for k in out if k not in ("runs", "before")}, indent=2))
PY
