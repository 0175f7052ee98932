#!/usr/bin/env bash
# README command one: set up, build, and run the main job — `nexus demo` over every checkpoint
# shipped in tests/data/models: architectures side by side, parity with transformers, generation.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash tools/build.sh
build="${NEXUS_BUILD_DIR:-build}"
"$build/nexus" demo --models tests/data/models
