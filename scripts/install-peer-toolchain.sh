#!/usr/bin/env bash
# Installs what scripts/build-peers.sh needs for the C peers, from Debian's archive:
#   clang, lld                 compile and link for wasm32-wasi
#   wasi-libc                  the C library, whose malloc is the dlmalloc peer
#   libclang-rt-dev-wasm32     compiler-rt builtins that clang links into every wasm32 program
#   dpkg-dev                   dpkg-source, which `apt-get source` unpacks with
# and enables deb-src entries for the archive this machine already uses, so that
# `apt-get source mimalloc` can fetch the mimalloc peer. The AssemblyScript peers (tlsf, bump)
# need only the npm packages.
#
# Idempotent: apt-get runs only when something is missing. Never fails the caller: when it cannot
# install (not root, no network) it says which peers will be unavailable and exits 0.
set -euo pipefail

readonly PACKAGES=(clang lld wasi-libc libclang-rt-dev-wasm32 dpkg-dev)
readonly SOURCE_LIST=/etc/apt/sources.list.d/pymalloc-wasm-deb-src.sources

# Compiling and linking a C program for wasm32-wasi exercises clang, wasm-ld, wasi-libc and the
# builtins together; checking each package alone would miss a broken combination.
toolchain_works() {
  command -v clang >/dev/null && command -v dpkg-source >/dev/null || return 1
  local probe
  probe=$(mktemp -d)
  printf '#include <stdlib.h>\nint main(void) { free(malloc(1)); return 0; }\n' >"$probe/probe.c"
  local status=0
  clang --target=wasm32-wasi -O2 -o "$probe/probe.wasm" "$probe/probe.c" >/dev/null 2>&1 || status=1
  rm -rf "$probe"
  return $status
}

mimalloc_source_known() {
  apt-cache showsrc mimalloc 2>/dev/null | grep -q '^Version:'
}

# The deb-src twin of each Debian entry the machine has, in whichever format it uses.
write_source_list() {
  if [[ -f /etc/apt/sources.list.d/debian.sources ]]; then
    sed -e 's/^Types:.*$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources >"$SOURCE_LIST"
  elif [[ -f /etc/apt/sources.list ]]; then
    grep -E '^deb\s' /etc/apt/sources.list | sed -e 's/^deb\s/deb-src /' \
      >"${SOURCE_LIST%.sources}.list"
  fi
}

unavailable_peers() {
  if ! toolchain_works; then
    echo "dlmalloc and mimalloc"
  elif ! mimalloc_source_known; then
    echo "mimalloc"
  fi
}

give_up() {
  echo "install-peer-toolchain: $1; peers $(unavailable_peers) will be unavailable" \
    "(tlsf and bump need only npm)"
  exit 0
}

need_packages=false
need_sources=false
toolchain_works || need_packages=true
mimalloc_source_known || need_sources=true
if ! $need_packages && ! $need_sources; then
  echo "install-peer-toolchain: toolchain and mimalloc sources already available"
  exit 0
fi

[[ $EUID -eq 0 ]] || give_up "not root, cannot run apt-get"
command -v apt-get >/dev/null || give_up "apt-get not found"

log=$(mktemp)
trap 'rm -f "$log"' EXIT
export DEBIAN_FRONTEND=noninteractive

if $need_sources; then
  write_source_list
fi
apt-get update -q >"$log" 2>&1 || { tail -n 5 "$log"; give_up "apt-get update failed"; }
if $need_packages; then
  echo "install-peer-toolchain: installing ${PACKAGES[*]}"
  apt-get install -y -q --no-install-recommends "${PACKAGES[@]}" >"$log" 2>&1 ||
    { tail -n 5 "$log"; give_up "apt-get install failed"; }
fi

missing=$(unavailable_peers)
[[ -z $missing ]] || give_up "installation incomplete"
echo "install-peer-toolchain: ready for all peers"
