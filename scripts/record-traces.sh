#!/usr/bin/env bash
# Records the real-program traces shipped in traces/ (traces/README.md lists them with the
# programs' versions and licences). Needs gcc (record builds its mtrace shim once), and the
# programs: python3, perl, sqlite3, jq, git. Usage: bash scripts/record-traces.sh [NAME...]
set -euo pipefail
cd "$(dirname "$0")/.."
readonly CLI=(node dist/tools/cli/index.js record)
readonly PROGRAMS=traces/programs

record() {
  local name=$1
  shift
  "${CLI[@]}" -o "traces/$name.trace.gz" -- "$@" >/dev/null
}

cc1_input() {
  # cc1 itself, not the gcc driver (which forks it): a preprocessed C file compiled at -O2.
  gcc -E -o "$1" peers/native/replay.c
}

want() { [[ ${#SELECTED[@]} -eq 0 ]] || [[ " ${SELECTED[*]} " == *" $1 "* ]]; }
SELECTED=("$@")

# The interpreter itself, not a wrapper such as pyenv's python3 shim (its shell would open the trace).
PYTHON=$(python3 -c 'import sys; print(sys.executable)')
want py-ast && PYTHONMALLOC=malloc PYTHONHASHSEED=0 record py-ast "$PYTHON" "$PROGRAMS/py-ast.py"
want perl-hash && record perl-hash perl "$PROGRAMS/perl-hash.pl"
want sqlite && record sqlite "$(command -v sqlite3)" :memory: ".read $PROGRAMS/sqlite.sql"
want jq-group && record jq-group jq -n -c -f "$PROGRAMS/jq-group.jq"
want git-log && record git-log git log -p --stat -n 40 ba4bfc8
if want cc1; then
  input=$(mktemp --suffix=.i)
  cc1_input "$input"
  record cc1 "$(gcc -print-prog-name=cc1)" -quiet -fpreprocessed -O2 "$input" -o /dev/null
  rm -f "$input"
fi
