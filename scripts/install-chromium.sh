#!/usr/bin/env bash
# Installs Debian's headless-capable Chromium for the report's browser test
# (tests/compare/report.test.ts drives it with playwright-core). Idempotent: does nothing when
# /usr/bin/chromium exists. Exits 0 with a message when it cannot install (not root, no apt):
# the browser test then skips and says why.
set -uo pipefail

readonly CHROMIUM=/usr/bin/chromium

if [[ -x $CHROMIUM ]]; then
  exit 0
fi
if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
  echo "install-chromium: $CHROMIUM missing and apt-get unavailable (or not root): the report's browser test will skip"
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y -q chromium >/dev/null 2>&1; then
  apt-get update -q >/dev/null 2>&1
  if ! apt-get install -y -q chromium >/dev/null 2>&1; then
    echo "install-chromium: apt-get install chromium failed: the report's browser test will skip"
    exit 0
  fi
fi
echo "install-chromium: installed $($CHROMIUM --version 2>/dev/null)"
