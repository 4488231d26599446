#!/usr/bin/env bash
# vtep VM: prod-vnet's VTEP (underlay 198.18.0.2, inside host.vteps) and its
# VNet clients behind a kernel VXLAN device, VNI 5001, towards the vault host:
#
#   198.19.1.10    subnet prod-vnet/app: a virtual network rule admits it
#   198.19.2.10    subnet prod-vnet/data: not listed (until a reload opens it);
#                  it reaches the private endpoint 198.19.1.100 all the same
#
# Runs at every `vagrant up`/`vagrant provision` (run: always): idempotent.
set -euo pipefail
. "${VW_PROVISION_DIR:-/tmp/vaultwall-provision}/lib.sh"   # uploaded by the Vagrantfile

setup_vtep_network() {
  local nic=$1
  vxlan_dev vxlan5001 5001 198.18.0.2 198.18.0.1 "$nic"
  ip addr add 198.19.1.10/24 dev vxlan5001
  ip addr add 198.19.2.10/24 dev vxlan5001
  ip link set vxlan5001 up
  # Service-endpoint traffic: the public endpoints through the overlay.
  ip route replace 203.0.113.0/24 dev vxlan5001 src 198.19.1.10
}

main() {
  apt_install iproute2 curl ca-certificates jq
  local nic
  nic=$(lab_nic 198.18.0.2)
  setup_vtep_network "$nic"
  say "vtep: lab NIC $nic"
  ip -brief addr show dev "$nic"
  ip -d link show dev vxlan5001 | sed -n '3p'
  ip -brief addr show dev vxlan5001
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then main "$@"; fi
