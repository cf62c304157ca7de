#!/usr/bin/env bash
# Builds the core's specialised modules into build/ (src/heap/builds.ts chooses among them):
#   pymalloc-<preset>.release.wasm       each preset's geometry fixed at compile time
#   pymalloc-tuned-policy.<build>.wasm   the tuned policy under any geometry (release and debug)
# pymalloc.release.wasm and pymalloc.debug.wasm, CPython's policy under any geometry, come from
# asconfig.json's targets (npm run build:wasm). The flags are those of assembly/memory/header.ts,
# "Fixed geometry"; each preset's values are those of src/heap/config.ts's PRESETS.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

readonly ASC=node_modules/.bin/asc
readonly ENTRY=assembly/abi/index.ts

# Usage: build NAME TARGET [--use FLAG=VALUE ...]
build() {
  local name=$1 target=$2
  shift 2
  "$ASC" "$ENTRY" --target "$target" -o "build/$name.$target.wasm" "$@"
}

geometry() {
  echo --use "PYMALLOC_ALIGNMENT_SHIFT=$1" --use "PYMALLOC_POOL_SHIFT=$2" \
    --use "PYMALLOC_ARENA_SHIFT=$3" --use PYMALLOC_SMALL_THRESHOLD=512
}

# shellcheck disable=SC2046 # geometry prints a list of words
build pymalloc-cpython-3.12 release $(geometry 4 14 20)
# shellcheck disable=SC2046
build pymalloc-cpython-3.7 release $(geometry 3 12 18)
# shellcheck disable=SC2046
build pymalloc-tuned release $(geometry 4 15 21) --use PYMALLOC_TUNED=1
for target in release debug; do
  build pymalloc-tuned-policy "$target" --use PYMALLOC_TUNED=1
done
