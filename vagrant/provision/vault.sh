#!/usr/bin/env bash
# vault VM, at every `vagrant up`/`vagrant provision` (run: always): the vault
# host's addresses and VXLAN device, vaultwall attached to the lab NIC, then
# the lab vault and vaultwalld (systemd units). Idempotent.
#
#   198.18.0.1/24   underlay (Vagrant configures it on the lab NIC)
#   203.0.113.10    contoso-prod's public endpoint
#   203.0.113.20    contoso-cmk's public endpoint
#   vxlan5001       VNI 5001 to the VTEP 198.18.0.2; the kernel decapsulates
#     198.19.1.100  contoso-prod's private endpoint (in prod-vnet/app)
#
# XDP mode: VW_XDP_MODE (native by default). If native attach fails (the
# hypervisor's virtio-net may refuse native XDP, e.g. when it cannot turn its
# guest offloads off), this says why and attaches in skb (generic) mode:
# the same verdicts and counters, after the kernel has built an skb.
set -euo pipefail
. "${VW_PROVISION_DIR:-/tmp/vaultwall-provision}/lib.sh"   # uploaded by the Vagrantfile
MODE=${VW_XDP_MODE:-native}
SBIN=${VW_SBIN:-/usr/sbin}   # the package's programs
CTL=${VW_CTL:-/usr/bin/vaultwallctl}

setup_vault_network() {
  local nic=$1
  ip addr replace 203.0.113.10/32 dev "$nic"
  ip addr replace 203.0.113.20/32 dev "$nic"
  # Replies to the client VM's public addresses and to the impostor stay on
  # the lab NIC (Vagrant's management NIC has the default route).
  ip route replace 192.0.2.0/24 dev "$nic"
  ip route replace 198.51.100.0/24 dev "$nic"
  ip route replace 198.18.1.0/24 dev "$nic"
  vxlan_dev vxlan5001 5001 198.18.0.1 "" "$nic"
  bridge fdb append 00:00:00:00:00:00 dev vxlan5001 dst 198.18.0.2
  ip addr add 198.19.1.100/24 dev vxlan5001
  ip link set vxlan5001 up
  ip route replace 198.19.2.0/24 dev vxlan5001
}

# attach_xdp NIC: vaultwall-loader attach, native first; keep an attachment
# that is already there (a re-provisioning must not reset the datapath).
attach_xdp() {
  local nic=$1
  if "$SBIN/vaultwall-loader" status --dev "$nic" --json 2>/dev/null |
      jq -e '.interfaces[0].attached == true' >/dev/null 2>&1; then
    say "vaultwall is already attached to $nic; keeping it"
    return 0
  fi
  if [ "$MODE" = native ]; then
    if "$SBIN/vaultwall-loader" attach --dev "$nic" --mode native; then return 0; fi
    say "native XDP was refused on $nic (see above): falling back to --mode skb"
    say "(check the driver: ethtool -i $nic; native needs driver XDP support)"
  fi
  "$SBIN/vaultwall-loader" attach --dev "$nic" --mode skb
}

main() {
  local nic
  nic=$(lab_nic 198.18.0.1)
  [ -x "$SBIN/vaultwalld" ] || die "$SBIN/vaultwalld missing: the install provisioner did not finish"
  setup_vault_network "$nic"
  attach_xdp "$nic"
  systemctl restart vaultwall-labvault.service
  systemctl restart vaultwalld.service
  local i
  for i in $(seq 100); do
    "$CTL" status >/dev/null 2>&1 && break
    [ "$i" -lt 100 ] || { journalctl -u vaultwalld --no-pager -n 30 >&2; die "vaultwalld did not come up"; }
    sleep 0.2
  done
  say "vault: lab NIC $nic"
  "$SBIN/vaultwall-loader" status
  "$CTL" status
  say "try: vagrant ssh vault -c 'sudo vaultwallctl stats'   (vagrant/README.md has the scenario)"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then main "$@"; fi
