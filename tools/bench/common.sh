# tools/bench/common.sh: sourced by wire.sh and gate.sh for what they both
# start with: where the binaries are, --help from the header, and the root,
# tool and binary checks. The caller defines die() before calling require_*.
ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../.." && pwd)
BIN=${VW_BIN:-$ROOT/build/bin}

# The script's header comment, up to `set -e`, without the comment marks.
print_help() { sed -n '2,/^set -e/p' "$1" | sed 's/^# \{0,1\}//;$d'; }

require_root() { [ "$(id -u)" -eq 0 ] || die "must run as root ($1)"; }

require_tools() {
  local t
  for t in "$@"; do
    command -v "$t" >/dev/null || die "$t is missing (scripts/deps.sh installs it)"
  done
}

require_binaries() {
  local b
  for b in "$@"; do
    [ -x "$BIN/$b" ] || die "$BIN/$b is missing: build first (./scripts/build.sh) or set VW_BIN"
  done
}
