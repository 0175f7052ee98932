#!/usr/bin/env bash
# README command one: set up, build, and run the main job — `nexus inspect --check` over every
# checkpoint shipped in tests/data/models, side by side.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash tools/build.sh
build="${NEXUS_BUILD_DIR:-build}"
"$build/nexus" inspect --check tests/data/models/*/
