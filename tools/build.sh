#!/usr/bin/env bash
# Set-up and build shared by the README commands: installs missing packages, configures, builds.
# Build folder: ${NEXUS_BUILD_DIR:-build}. Extra CMake arguments may follow.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash tools/setup.sh
build="${NEXUS_BUILD_DIR:-build}"
[ -d /usr/local/cuda/bin ] && export PATH="/usr/local/cuda/bin:$PATH"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build "$build" -j"$(nproc)"
