# Sourced by the benchmarks that run Python peers (bench/cpu/run.sh, bench/serve/run.sh): a virtual
# environment made from a pinned requirements file, remade only when that file changes (its sha256 is
# kept in the environment). llama-cpp-python compiles llama.cpp from source (CMAKE_ARGS below), under
# nice so that it does not starve other work; 10-20 minutes on 2 cores.
#   python_env VENV REQUIREMENTS LABEL
python_env() {
  local venv=$1 req=$2 label=$3
  local stamp="$venv/.requirements.sha256" want
  want=$(sha256sum "$req" | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "$label: setting up $venv from $req (llama-cpp-python compiles llama.cpp: 10-20 minutes on 2 cores)" >&2
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=ON -DLLAMA_CURL=OFF}" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
      nice -n 19 "$venv/bin/pip" install -q -r "$req"
    echo "$want" >"$stamp"
  fi
}
