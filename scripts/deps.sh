#!/usr/bin/env bash
# Installs the Debian 12 packages vaultwall builds, tests and demos with.
# Idempotent: apt-get skips what is already there.
set -euo pipefail

PACKAGES=(
  # toolchain
  build-essential cmake pkg-config clang llvm
  # datapath
  libbpf-dev libxdp-dev bpftool xdp-tools libelf-dev zlib1g-dev linux-libc-dev
  # user space
  libspdlog-dev libfmt-dev libyaml-cpp-dev libyaml-dev libboost-dev libssl-dev nlohmann-json3-dev libcli11-dev
  # systemd integration (sd_notify) and the .deb: libsystemd, lintian, systemd-analyze (systemd), dpkg-dev
  libsystemd-dev systemd lintian dpkg-dev file
  # tests, lab and benchmarks
  libgtest-dev libgmock-dev googletest libbenchmark-dev iproute2 iputils-ping curl openssl jq
  netsniff-ng procps util-linux vagrant
  nftables ipset iptables wrk nginx-light python3
  # captures: vaultwallctl explain --pcap / whatif read them (libpcap), the lab takes one (tcpdump)
  libpcap-dev tcpdump
  # fleet: etcd servers for the tests, and the etcd v3 protos + gRPC to build the client
  etcd-server etcd-client golang-etcd-server-dev golang-github-gogo-protobuf-dev
  golang-github-grpc-ecosystem-grpc-gateway-dev protobuf-compiler protobuf-compiler-grpc libgrpc++-dev
  libprotobuf-dev
  # fuzzing (tools/fuzz/run): clang 16 with libFuzzer and the sanitizer runtimes
  clang-16 libfuzzer-16-dev libclang-rt-16-dev
)
# The gate's SDK test runs the official Key Vault JavaScript SDKs: Node.js 18+
# and npm, from Debian unless the machine already has them.
command -v node >/dev/null 2>&1 || PACKAGES+=(nodejs)
command -v npm >/dev/null 2>&1 || PACKAGES+=(npm)

# --list: print the packages, one a line, and install nothing (.ci/run
# installs them itself, so CI's install step is plain to see).
if [ "${1:-}" = "--list" ]; then
  printf '%s\n' "${PACKAGES[@]}"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "deps.sh: run as root (it installs Debian packages)" >&2
  exit 1
fi
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
