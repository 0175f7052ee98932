#!/usr/bin/env bash
# README command one: set up, build, fetch the two real models (once, into the model cache), and run
# the main job — `nexus demo`: the real teachers from their GGUF files, checked against transformers
# and generating, then the tiny fixture of every family.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash tools/build.sh
bash tools/fetch_models.sh >/dev/null
build="${NEXUS_BUILD_DIR:-build}"
"$build/nexus" demo --models tests/data/models --references tests/data/real
