# shellcheck shell=bash
# Shared by the provisioning scripts (sourced, not run).

say() { printf '==> %s\n' "$*"; }
die() { echo "vaultwall vagrant: $*" >&2; exit 1; }

# lab_nic ADDR: the interface that holds ADDR (Vagrant put it on the lab NIC).
# Vagrant names NICs per box and provider (eth1, ens6...), so look it up.
lab_nic() {
  local nic
  nic=$(ip -o -4 addr show | awk -v a="$1" '{ split($4, p, "/"); if (p[1] == a) { print $2; exit } }')
  [ -n "$nic" ] || die "no interface holds $1: did Vagrant configure the lab network?"
  echo "$nic"
}

# apt_install PKG...: install what is missing (Debian 12 box).
apt_install() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# vxlan_dev NAME VNI LOCAL [REMOTE] DEV: (re)create a kernel VXLAN device on
# the lab NIC, UDP port 4789 (host.vxlan_port in the rules).
vxlan_dev() {
  local name=$1 vni=$2 local_addr=$3 remote=$4 dev=$5
  ip link del "$name" 2>/dev/null || true
  if [ -n "$remote" ]; then
    ip link add "$name" type vxlan id "$vni" local "$local_addr" remote "$remote" dstport 4789 dev "$dev"
  else
    ip link add "$name" type vxlan id "$vni" local "$local_addr" dstport 4789 dev "$dev"
  fi
}
