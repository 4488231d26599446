#!/usr/bin/env bash
# The user-space unit and integration tests once more, built with ASan +
# UBSan (any finding fatal: cmake/sanitizers.cmake) in their own build
# directory, build-asan (or $VW_ASAN_BUILD_DIR). Run by ctest as
# hardening.asan from the README's test command, as root like the suite.
#
#   scripts/test-asan.sh [--build-only] [TEST_BINARY...]   default: every binary in ALL
#
# ALL is what has run clean under the sanitizers, PENDING the rest of tests/'s
# binaries (the fuzz harnesses have their own build); a binary of tests/ in
# neither list fails this script, and so does one of ALL that does not build.
# Every process the tests start (the ASan builds of the project's programs)
# writes a sanitizer report to build-asan/asan-logs/, and each test's output
# is kept in build-asan/asan-output/: a report in either fails the run, even
# one the test itself did not notice (exit 0).
# A reload soak runs VW_RELOAD_SOAK reloads here (default 100; 1,000 in the
# normal build).
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;; esac
build_only=0
if [ "${1:-}" = --build-only ]; then build_only=1; shift; fi
BUILD=${VW_ASAN_BUILD_DIR:-build-asan}
ALL=(
  # rules, reference classifier, packets, vaultwallctl offline (an ASan
  # vaultwallctl), migration (with the ASan vaultwallctl import azure)
  test_rules test_reference vw_packet_test test_ctl_check test_migrate
  # the lab VM's provisioning output checked with the gate's JWT and config code
  test_vagrant_provision
  # the gate: unit, proxy against the ASan vaultwall-labvault, labvault,
  # limits, remote JWKS, the SDK clients
  gate_unit_tests gate_proxy_tests labvault_tests gate_limits_tests
  gate_jwks_remote_tests gate_sdk_tests
  # the map backend and the BPF tests (the program itself is clang's BPF
  # object, not instrumented; the loader, installer and readers around it are)
  installer_test stride_tables_test datapath_test drop_events_test
  ipv6_datapath_test differential_test explain_frames_test
  # the fleet against a loopback etcd, the daemon, sd_notify
  fleet_etcd_test fleet_publish_test fleet_agent_test fleet_daemon_test
  notify_test daemon_test
)
# Test binaries of tests/ not yet run under the sanitizers (neither built nor
# run here until one has run clean, then it moves to ALL). Empty: every test
# binary of tests/ runs here.
PENDING=()
# gtest filters for tests that measure what the sanitizers change, not our code.
declare -A FILTER=(
  # RSS per idle TLS connection measures the allocator: 131 KiB under ASan
  # (its redzones and quarantine; mallinfo2 sees none of its heap) against
  # 76 KiB with glibc's; the bound is asserted in the normal build.
  [gate_limits_tests]=-Limits.IdleTlsConnectionMemoryIsBounded
)
if [ $# -gt 0 ]; then TESTS=("$@"); else TESTS=("${ALL[@]}"); fi

# Every test binary of tests/ is in ALL or PENDING: a new one cannot be left
# out by forgetting these lists.
missing=()
while read -r t; do
  [[ " ${ALL[*]} ${PENDING[*]} " == *" $t "* ]] || missing+=("$t")
done < <(sed -n 's/^ *add_executable(\([A-Za-z0-9_][A-Za-z0-9_]*\)[ )].*/\1/p' tests/*/CMakeLists.txt | sort -u)
if [ ${#missing[@]} -gt 0 ]; then
  echo "test-asan.sh: test binaries of tests/ in neither ALL nor PENDING: ${missing[*]}" >&2
  exit 1
fi

launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
# -O1 -g1: ASan's own recommendation for speed with useful stacks (line
# tables are enough to symbolize them), chosen to compile faster than
# RelWithDebInfo's -O2 -g (not measured against it); NDEBUG as in the normal build, so the same
# code is tested.
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVW_SANITIZE=address,undefined \
  "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG" "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG" \
  "${launcher[@]}" >/dev/null
start=$(date +%s)
cmake --build "$BUILD" -j"${VW_JOBS:-$(nproc)}" --target "${TESTS[@]}"
echo "===== asan: built in $(($(date +%s) - start)) s"
for t in "${TESTS[@]}"; do
  [ -x "$BUILD/bin/$t" ] || { echo "test-asan.sh: $BUILD/bin/$t was not built" >&2; exit 1; }
done
[ "$build_only" -eq 0 ] || exit 0

LOGS=$(cd "$BUILD" && pwd)/asan-logs
OUT=$(cd "$BUILD" && pwd)/asan-output
rm -rf "$LOGS" "$OUT" && mkdir -p "$LOGS" "$OUT"
# Abort (and so fail the test) on the first finding; leaks count too.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:strict_string_checks=1:log_path=$LOGS/asan}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1:log_path=$LOGS/ubsan}
export VW_RELOAD_SOAK=${VW_RELOAD_SOAK:-100}
# A report that reached a terminal instead of log_path (a process started
# with its own environment) is found in the test's output.
REPORT='^==[0-9]+==ERROR: [A-Za-z]+Sanitizer|runtime error: |^SUMMARY: [A-Za-z]+Sanitizer'
failed=()
total=$(date +%s)
for t in "${TESTS[@]}"; do
  echo "===== asan: $t"
  start=$(date +%s)
  set +e
  "$BUILD/bin/$t" --gtest_brief=1 ${FILTER[$t]:+"--gtest_filter=${FILTER[$t]}"} 2>&1 | tee "$OUT/$t.log"
  rc=${PIPESTATUS[0]}
  set -e
  if [ "$rc" -ne 0 ]; then
    echo "===== asan: $t FAILED (exit $rc)" >&2
    failed+=("$t")
  elif grep -qE "$REPORT" "$OUT/$t.log"; then
    echo "===== asan: $t FAILED (a sanitizer report in its output, exit 0)" >&2
    failed+=("$t")
  else
    echo "===== asan: $t passed in $(($(date +%s) - start)) s"
  fi
done
echo "===== asan: ran in $(($(date +%s) - total)) s"
if compgen -G "$LOGS/*" >/dev/null; then
  echo "test-asan.sh: sanitizer reports:" >&2
  for f in "$LOGS"/*; do echo "--- $f" >&2; head -60 "$f" >&2; done
  failed+=("(reports in $LOGS)")
fi
if [ ${#failed[@]} -gt 0 ]; then
  echo "test-asan.sh: failed under ASan/UBSan: ${failed[*]}" >&2
  exit 1
fi
echo "test-asan.sh: ${#TESTS[@]} test binaries clean under ASan + UBSan"
