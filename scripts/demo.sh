#!/usr/bin/env bash
# The lab demo, from a fresh Debian 12 machine, as root: installs what it
# needs, builds, brings the namespace lab up, narrates the scenario, and tears
# everything down again (also when a step fails).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x tools/vaultwall-lab ]; then
  echo "demo.sh: the namespace lab (tools/vaultwall-lab) is not built yet; see the open lab issue" >&2
  exit 2
fi
./scripts/deps.sh
./scripts/build.sh
exec tools/vaultwall-lab demo
