#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine, as root:
# installs what it needs, builds, and runs every test with ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
./scripts/build.sh
BUILD_DIR=${VW_BUILD_DIR:-build}
# Network tests create their own namespaces; run tests one at a time.
ctest --test-dir "$BUILD_DIR" --output-on-failure --timeout 900 "$@"
