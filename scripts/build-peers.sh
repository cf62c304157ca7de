#!/usr/bin/env bash
# Builds the peer allocators into build/peers/<name>.wasm (see peers/README.md):
#   tlsf      AssemblyScript's TLSF        peers/assemblyscript/driver.ts, --runtime incremental
#   bump      a bump pointer, never frees  the same driver, --runtime peers/bump/runtime
#   pymalloc-3.12, pymalloc-3.7            peers/pymalloc/driver.ts (the same driver plus the core's
#                                          stats and arena map), --runtime peers/pymalloc/runtime
#   dlmalloc  wasi-libc's malloc           peers/c/driver.c
#   mimalloc  Debian's mimalloc source     peers/c/driver.c + mimalloc's src/static.c
# The C peers need scripts/install-peer-toolchain.sh first; a peer that cannot be built is
# reported with the reason and skipped. Usage: build-peers.sh [--assemblyscript-only | --c-only]
#   --assemblyscript-only  what `npm ci` runs: the peers that need nothing but the npm packages
#   --c-only               what `pymalloc peers --build` runs in an installed package (which has
#                          no AssemblyScript compiler): dlmalloc and mimalloc
# PEERS_OUT (an absolute directory, default build/peers) is where the modules go.
# Exits 0 iff tlsf and bump (with --c-only: dlmalloc) exist afterwards.
# Idempotent: an output newer than all of its inputs is left alone.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

readonly MODE=${1:-all}
readonly OUT=${PEERS_OUT:-build/peers}
readonly OBJ=$OUT/obj
readonly SRC=$OUT/src
readonly ASC=node_modules/.bin/asc
readonly THIS_SCRIPT=scripts/build-peers.sh
# The repository's asconfig.json is for the core allocator; the peers have their own.
readonly AS_CONFIG=peers/assemblyscript/asconfig.json
readonly C_FLAGS=(--target=wasm32-wasi -O3 -std=c11)
# shellcheck disable=SC2054 # the commas belong to -Wl,
readonly LINK_FLAGS=(--target=wasm32-wasi -nostartfiles -Wl,--no-entry -Wl,--strip-all)
# Release configuration of mimalloc; the process-clock emulation stands in for clock(), which
# WASI lacks.
readonly MIMALLOC_FLAGS=(-DNDEBUG -DMI_DEBUG=0 -D_WASI_EMULATED_PROCESS_CLOCKS -w)

mkdir -p "$OUT" "$OBJ" "$SRC"

# True iff $1 is missing or older than any of the other arguments.
stale() {
  local output=$1 input
  shift
  [[ -e $output ]] || return 0
  for input in "$@"; do
    [[ $input -nt $output ]] && return 0
  done
  return 1
}

skip() {
  echo "build-peers: $1: skipped, ${*:2}"
}

# Each module's <name>.version beside it says what it was built from (the comparison's JSON
# reports it).
as_version() {
  node -p 'require("./node_modules/assemblyscript/package.json").version'
}

# Writes to a temporary name and renames, so an interrupted build leaves no half-written module.
# Usage: [DRIVER=FILE] build_as_peer NAME RUNTIME "EXTRA ASC FLAGS" [INPUT ...]
# DRIVER is the entry file, peers/assemblyscript/driver.ts unless set.
build_as_peer() {
  local name=$1 runtime=$2 flags=$3 driver=${DRIVER:-peers/assemblyscript/driver.ts}
  shift 3
  local output=$OUT/$name.wasm
  stale "$output" "$driver" peers/assemblyscript/driver.ts "$@" "$AS_CONFIG" \
    node_modules/assemblyscript/package.json "$THIS_SCRIPT" || return 0
  # shellcheck disable=SC2086 # flags is a list of words
  "$ASC" "$driver" --config "$AS_CONFIG" --runtime "$runtime" $flags \
    -o "$output.tmp"
  mv "$output.tmp" "$output"
  echo "assemblyscript $(as_version) (${runtime#./peers/})" >"$OUT/$name.version"
  echo "build-peers: $name: built"
}

c_toolchain_missing() {
  command -v clang >/dev/null || { echo "clang not found"; return 0; }
  [[ -f $(clang --target=wasm32-wasi -print-file-name=libc.a) ]] ||
    { echo "wasi-libc not found"; return 0; }
  return 1
}

# The C builds run as `build_... || skip`, where errexit is off: each step checks for itself.
build_dlmalloc() {
  local output=$OUT/dlmalloc.wasm
  stale "$output" peers/c/driver.c "$THIS_SCRIPT" || return 0
  clang "${C_FLAGS[@]}" -Wall -Wextra -DPEER_DLMALLOC -c -o "$OBJ/driver-dlmalloc.o" \
    peers/c/driver.c || return 1
  clang "${LINK_FLAGS[@]}" -o "$output.tmp" "$OBJ/driver-dlmalloc.o" || return 1
  mv "$output.tmp" "$output" || return 1
  echo "wasi-libc $(dpkg-query -W -f '${Version}' wasi-libc 2>/dev/null || echo unknown) (dlmalloc)" >"$OUT/dlmalloc.version"
  echo "build-peers: dlmalloc: built"
}

# Prints the unpacked mimalloc source directory, fetching it with `apt-get source` if needed.
mimalloc_source() {
  local found
  found=$(find "$SRC" -mindepth 3 -maxdepth 3 -path '*/src/static.c' -print -quit)
  if [[ -z $found ]]; then
    (cd "$SRC" && apt-get source -q mimalloc) >"$SRC/apt-get-source.log" 2>&1 || return 1
    found=$(find "$SRC" -mindepth 3 -maxdepth 3 -path '*/src/static.c' -print -quit)
  fi
  [[ -n $found ]] || return 1
  dirname "$(dirname "$found")"
}

build_mimalloc() {
  local output=$OUT/mimalloc.wasm source
  if ! source=$(mimalloc_source); then
    skip mimalloc "apt-get source mimalloc failed, see $SRC/apt-get-source.log" \
      "(are deb-src entries enabled? run scripts/install-peer-toolchain.sh)"
    return 0
  fi
  local sources=("$source"/src/*.c "$source"/src/*.h "$source"/include/*.h)
  if stale "$OBJ/mimalloc.o" "${sources[@]}" "$THIS_SCRIPT"; then
    clang "${C_FLAGS[@]}" "${MIMALLOC_FLAGS[@]}" -I"$source/include" -c -o "$OBJ/mimalloc.o" \
      "$source/src/static.c" || return 1
  fi
  stale "$output" "$OBJ/mimalloc.o" peers/c/driver.c "$THIS_SCRIPT" || return 0
  clang "${C_FLAGS[@]}" -Wall -Wextra -DPEER_MIMALLOC -I"$source/include" \
    -c -o "$OBJ/driver-mimalloc.o" peers/c/driver.c || return 1
  clang "${LINK_FLAGS[@]}" -o "$output.tmp" "$OBJ/driver-mimalloc.o" "$OBJ/mimalloc.o" \
    -lwasi-emulated-process-clocks || return 1
  mv "$output.tmp" "$output" || return 1
  basename "$source" >"$OUT/mimalloc.version"
  echo "build-peers: mimalloc: built from $(basename "$source")"
}

if [[ $MODE != --c-only ]]; then
  if [[ ! -x $ASC ]]; then
    echo "build-peers: $ASC not found: run npm install first" >&2
    exit 1
  fi
  build_as_peer tlsf incremental ""
  build_as_peer bump ./peers/bump/runtime "" peers/bump/runtime.ts
  readonly CORE=(peers/pymalloc/runtime.ts assembly/*/*.ts)
  # The core keeps its heap header below its static data (assembly/memory/header.ts): the peers
  # start their static data where the core's own builds do.
  MEMORY_BASE=$(node -p 'require("./asconfig.json").options.memoryBase')
  readonly MEMORY_BASE
  DRIVER=peers/pymalloc/driver.ts build_as_peer pymalloc-3.12 ./peers/pymalloc/runtime \
    "--memoryBase $MEMORY_BASE --use PYMALLOC_ALIGNMENT_SHIFT=4 --use PYMALLOC_POOL_SHIFT=14 --use PYMALLOC_ARENA_SHIFT=20" "${CORE[@]}"
  DRIVER=peers/pymalloc/driver.ts build_as_peer pymalloc-3.7 ./peers/pymalloc/runtime \
    "--memoryBase $MEMORY_BASE --use PYMALLOC_ALIGNMENT_SHIFT=3 --use PYMALLOC_POOL_SHIFT=12 --use PYMALLOC_ARENA_SHIFT=18" "${CORE[@]}"
fi

if [[ $MODE != --assemblyscript-only ]]; then
  if reason=$(c_toolchain_missing); then
    skip dlmalloc "$reason (run scripts/install-peer-toolchain.sh)"
    skip mimalloc "$reason (run scripts/install-peer-toolchain.sh)"
  else
    build_dlmalloc || skip dlmalloc "compilation failed"
    build_mimalloc || skip mimalloc "compilation failed"
  fi
fi

if [[ $MODE == --c-only ]]; then
  [[ -f $OUT/dlmalloc.wasm ]]
else
  [[ -f $OUT/tlsf.wasm && -f $OUT/bump.wasm ]]
fi
