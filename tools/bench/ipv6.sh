#!/usr/bin/env bash
# tools/bench/ipv6.sh [--build-only] [--before COMMIT] [--rounds N] [--sizes4 LIST] [--sizes6 LIST]
#
# Issue 16's datapath figures from one run (BPF_PROG_TEST_RUN, no wire):
#  1. IPv4 before and after the IPv6 datapath: this build's program against
#     the object of COMMIT (default 7c2f038, the last commit before the IPv6
#     datapath), both loaded on the same maps in one process, alternating in
#     short rounds with an XDP_DROP floor beside each (vaultwall-bench
#     datapath-ab, its default 4 copies of each program), for 1k/100k/1M
#     IPv4 rules and four packet shapes;
#  2. IPv6 rule lookups against the kernel's 128-bit LPM trie at 100k and 1M
#     rules (vaultwall-bench datapath6).
#
# The "before" object is built from a temporary `git worktree` of COMMIT
# (only its BPF object target, in build-before-COMMIT/ beside build/, which
# .gitignore covers) and kept there for later runs; the worktree is removed.
# --build-only builds it and stops: do that outside a quiet window, e.g.
#   /work/helpers/heavy tools/bench/ipv6.sh --build-only
#   /work/helpers/quiet flock /tmp/vw-bench.lock tools/bench/ipv6.sh
# Run as root from the source tree after ./scripts/build.sh (VW_BIN: binaries).
set -euo pipefail

. "$(dirname "$(readlink -f "$0")")/common.sh"
BEFORE=7c2f038
ROUNDS=31
SIZES4=1000,100000,1000000
SIZES6=100000,1000000
BUILD_ONLY=0
while [ $# -gt 0 ]; do
  case $1 in
    --build-only) BUILD_ONLY=1 ;;
    --before) BEFORE=$2; shift ;;
    --rounds) ROUNDS=$2; shift ;;
    --sizes4) SIZES4=$2; shift ;;
    --sizes6) SIZES6=$2; shift ;;
    -h|--help) print_help "$0"; exit 0 ;;
    *) echo "ipv6.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
die() { echo "ipv6.sh: $*" >&2; exit 1; }
require_tools git cmake

BEFORE_SHA=$(git -C "$ROOT" rev-parse --verify "$BEFORE^{commit}") || die "no commit $BEFORE in $ROOT"
BEFORE_DIR=$ROOT/build-before-${BEFORE_SHA:0:7}
BEFORE_OBJ=$BEFORE_DIR/gen/vaultwall_bpf.bpf.o

# The before object: its own CMake rule (bpf/ and cmake/bpf.cmake of COMMIT),
# nothing else of that tree built.
if [ ! -s "$BEFORE_OBJ" ]; then
  SRC=$(mktemp -d /tmp/vw-before-src.XXXXXX)
  rmdir "$SRC"
  trap 'git -C "$ROOT" worktree remove --force "$SRC" 2>/dev/null || rm -rf "$SRC"' EXIT
  git -C "$ROOT" worktree add --detach "$SRC" "$BEFORE_SHA" >/dev/null
  cmake -S "$SRC" -B "$BEFORE_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$BEFORE_DIR" --target vaultwall_bpf_skel >/dev/null
  [ -s "$BEFORE_OBJ" ] || die "building $BEFORE_OBJ failed"
  echo "ipv6.sh: built $BEFORE_OBJ from ${BEFORE_SHA:0:7}"
fi
[ "$BUILD_ONLY" = 1 ] && exit 0

require_root "BPF_PROG_TEST_RUN"
require_binaries vaultwall-bench
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf

after=$(git -C "$ROOT" rev-parse --short HEAD)
git -C "$ROOT" diff --quiet HEAD -- bpf userspace tools || after="$after (+ uncommitted changes)"
echo "ipv6.sh at $(date -u +%FT%TZ): after = $BIN (built from $after), before = ${BEFORE_SHA:0:7}"
echo "uptime: $(uptime)"
echo
"$BIN/vaultwall-bench" datapath-ab --before-obj "$BEFORE_OBJ" --sizes "$SIZES4" --rounds "$ROUNDS"
echo "uptime: $(uptime)"
echo
"$BIN/vaultwall-bench" datapath6 --sizes "$SIZES6" --packets 16384 --sweeps 5
echo "uptime: $(uptime)"
