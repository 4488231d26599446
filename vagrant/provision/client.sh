#!/usr/bin/env bash
# client VM: the namespace lab's public clients and the VTEP impostor, as
# addresses on the lab NIC (the lab gives each its own namespace):
#
#   192.0.2.10     alice: an ip rule (192.0.2.0/24) admits her; the default source
#   198.51.100.66  mallory: no rule admits him (curl --interface 198.51.100.66)
#   198.51.100.30  "Azure Storage", a trusted service (curl --interface 198.51.100.30)
#   198.18.1.66    a VTEP impostor: VXLAN (VNI 5001) from outside host.vteps,
#                  carrying 198.19.1.11 on its own device vxlan5001
#
# Runs at every `vagrant up`/`vagrant provision` (run: always): idempotent.
set -euo pipefail
. "${VW_PROVISION_DIR:-/tmp/vaultwall-provision}/lib.sh"   # uploaded by the Vagrantfile

setup_client_network() {
  local nic=$1
  ip addr replace 198.51.100.66/24 dev "$nic"
  ip addr replace 198.51.100.30/24 dev "$nic"
  ip addr replace 198.18.1.66/24 dev "$nic"
  # The vault endpoints are on-link (the vault VM answers ARP for them).
  ip route replace 203.0.113.0/24 dev "$nic" src 192.0.2.10
  # The impostor's underlay path to the vault host.
  ip route replace 198.18.0.0/24 dev "$nic" src 198.18.1.66
  vxlan_dev vxlan5001 5001 198.18.1.66 198.18.0.1 "$nic"
  ip addr add 198.19.1.11/24 dev vxlan5001
  ip link set vxlan5001 up
}

main() {
  apt_install iproute2 curl ca-certificates jq
  local nic
  nic=$(lab_nic 192.0.2.10)
  setup_client_network "$nic"
  say "client: lab NIC $nic"
  ip -brief addr show dev "$nic"
  ip -brief addr show dev vxlan5001
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then main "$@"; fi
