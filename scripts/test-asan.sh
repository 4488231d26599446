#!/usr/bin/env bash
# The user-space unit and integration tests once more, built with ASan +
# UBSan (any finding fatal: cmake/sanitizers.cmake) in their own build
# directory, build-asan (or $VW_ASAN_BUILD_DIR). Run by ctest as
# hardening.asan from the README's test command, as root like the suite.
#
#   scripts/test-asan.sh [TEST_BINARY...]     default: every binary in ALL
#
# ALL is what has been run clean under the sanitizers (docs/hardening.md),
# not a wish. Every process the tests start (the ASan builds of the
# project's programs) writes a sanitizer report to build-asan/asan-logs/;
# any report there fails the run, even one a test did not notice. A reload
# soak runs VW_RELOAD_SOAK reloads here (default 100; 1,000 in the normal build).
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;; esac
BUILD=${VW_ASAN_BUILD_DIR:-build-asan}
ALL=(test_rules test_reference vw_packet_test gate_unit_tests gate_proxy_tests labvault_tests)
if [ $# -gt 0 ]; then TESTS=("$@"); else TESTS=("${ALL[@]}"); fi

launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVW_SANITIZE=address,undefined "${launcher[@]}" >/dev/null
start=$(date +%s)
cmake --build "$BUILD" -j"${VW_JOBS:-$(nproc)}" --target "${TESTS[@]}"
echo "===== asan: built in $(($(date +%s) - start)) s"

LOGS=$(cd "$BUILD" && pwd)/asan-logs
rm -rf "$LOGS" && mkdir -p "$LOGS"
# Abort (and so fail the test) on the first finding; leaks count too.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:strict_string_checks=1:log_path=$LOGS/asan}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1:log_path=$LOGS/ubsan}
export VW_RELOAD_SOAK=${VW_RELOAD_SOAK:-100}
failed=()
for t in "${TESTS[@]}"; do
  echo "===== asan: $t"
  start=$(date +%s)
  if "$BUILD/bin/$t" --gtest_brief=1; then
    echo "===== asan: $t passed in $(($(date +%s) - start)) s"
  else
    echo "===== asan: $t FAILED" >&2
    failed+=("$t")
  fi
done
if compgen -G "$LOGS/*" >/dev/null; then
  echo "test-asan.sh: sanitizer reports:" >&2
  for f in "$LOGS"/*; do echo "--- $f" >&2; head -40 "$f" >&2; done
  failed+=("(reports in $LOGS)")
fi
if [ ${#failed[@]} -gt 0 ]; then
  echo "test-asan.sh: failed under ASan/UBSan: ${failed[*]}" >&2
  exit 1
fi
echo "test-asan.sh: ${#TESTS[@]} test binaries clean under ASan + UBSan"
