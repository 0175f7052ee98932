#!/usr/bin/env bash
# Byte-level vs canonical-token scoring of the two real teachers on the first ~600 bytes of
# bench/fusion/english.txt (the GPL-3 preamble, English prose): `nexus score --end --json`, one
# thread each, written with the command, machine and versions to bench/results/byte-level.json.
#   bash bench/fusion/byte_level.sh [BUILD_DIR]      (default build; needs the nexus target)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
build="${1:-build}"
models="${NEXUS_MODELS:-$HOME/.cache/nexus/models}"
tmp=$(mktemp -d)
python3 - "$tmp/text.txt" <<'PY'
import sys
d = open("bench/fusion/english.txt", "rb").read()[:600]
open(sys.argv[1], "wb").write(d[:d.rindex(b" ")])
PY
for m in SmolLM2-135M-Instruct.Q4_1.gguf gemma-3-270m-q4_k_m.gguf; do
  "$build/nexus" score "$models/$m" --text "$tmp/text.txt" --end --json --threads 1 > "$tmp/$m.json"
done
python3 - "$tmp" <<'PY'
import json, platform, subprocess, sys, os
tmp = sys.argv[1]
runs = [json.load(open(os.path.join(tmp, m + ".json"))) for m in ["SmolLM2-135M-Instruct.Q4_1.gguf", "gemma-3-270m-q4_k_m.gguf"]]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
out = {"command": "bash bench/fusion/byte_level.sh", "text": "bench/fusion/english.txt, first 598 bytes",
       "machine": {"cpu": cpu, "cores": os.cpu_count(), "os": platform.platform()},
       "versions": {"nexus": subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip(),
                    "compiler": subprocess.run(["c++", "--version"], capture_output=True, text=True).stdout.splitlines()[0]},
       "runs": runs}
json.dump(out, open("bench/results/byte-level.json", "w"), indent=2)
print(json.dumps(out, indent=2))
PY
