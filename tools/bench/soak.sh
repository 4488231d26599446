#!/usr/bin/env bash
# soak.sh: the benchmark modes of two correctness tests (issue 13), longer
# than CI runs them. Each prints its own summary; the run fails if either
# finds a misclassified packet.
#   - the reload soak: 10,000 reloads under traffic (tests/daemon/traffic_test.cpp,
#     ReloadUnderTrafficZeroMisclassified; CI runs 1,000), 0 misclassified;
#   - the differential test: 1,000,000 packets compared between the kernel
#     program and the reference classifier, per lookup mix (CI: 200,000).
#
#   tools/bench/soak.sh [--reloads N] [--packets N]
set -euo pipefail
HERE=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)
. "$HERE/common.sh"
RELOADS=10000 PACKETS=1000000
while [ $# -gt 0 ]; do
  case "$1" in
    --reloads) RELOADS=${2:?--reloads needs a number}; shift 2 ;;
    --packets) PACKETS=${2:?--packets needs a number}; shift 2 ;;
    -h|--help) print_help "$0"; exit 0 ;;
    *) echo "soak.sh: unknown argument $1 (--reloads N, --packets N)" >&2; exit 2 ;;
  esac
done
die() { echo "soak.sh: $*" >&2; exit 1; }
require_root "BPF, namespaces"
require_binaries daemon_test differential_test
echo "soak.sh at $(date -u +%FT%TZ); commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'); load $(cut -d' ' -f1-3 /proc/loadavg)"
t0=$(date +%s)
VW_RELOAD_SOAK=$RELOADS "$BIN/daemon_test" --gtest_filter='*ReloadUnderTrafficZeroMisclassified*' |
  grep -E 'reload under traffic|OK|FAILED|Failure|misclassified' || die "the reload soak failed"
echo "soak.sh: $RELOADS reloads in $(($(date +%s) - t0)) s"
t0=$(date +%s)
VW_DIFF_PACKETS=$PACKETS "$BIN/differential_test" |
  grep -E 'differential:|OK|FAILED|Failure' || die "the differential test failed"
echo "soak.sh: $PACKETS packets per lookup mix in $(($(date +%s) - t0)) s"
