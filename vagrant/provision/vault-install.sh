#!/usr/bin/env bash
# vault VM, first provisioning only: install vaultwall with the project's own
# steps from the rsync copy of the repository, then the lab's configuration.
#
#   /opt/vaultwall                  the repository (vagrant rsync vault)
#   /opt/vaultwall/build            the build (scripts/build.sh) and its
#                                   package, installed: /usr/sbin/vaultwalld,
#                                   /usr/bin/vaultwallctl, vaultwalld.service...
#   /usr/local/bin                  vaultwall-labvault (from the build) and
#                                   vaultwall-vm-token
#   /etc/vaultwall/rules.yaml       the lab rules (vagrant/vault/rules.yaml)
#   /etc/vaultwall/trusted-services.yaml   the catalog (rules/trusted-services.yaml)
#   /etc/vaultwall/pki/             lab CA, TLS certificate, token issuer key + JWKS
#   /var/log/vaultwall/audit.jsonl  the gate's audit log
#
# Re-run it with `vagrant provision vault --provision-with lib,install,lab` after
# `vagrant rsync vault` to rebuild; existing configuration and keys are kept.
set -euo pipefail
. "${VW_PROVISION_DIR:-/tmp/vaultwall-provision}/lib.sh"   # uploaded by the Vagrantfile
SRC=${VW_SRC:-/opt/vaultwall}
ETC=${VW_ETC:-/etc/vaultwall}
BIN=${VW_BIN:-/usr/local/bin}
LOG_DIR=${VW_LOG_DIR:-/var/log/vaultwall}

# The lab's PKI, as tools/vaultwall-lab makes it at `up` (valid 30 days here),
# with the same tool (vaultwall-labvault pki; tests/vagrant checks its output).
make_pki() {
  "$BIN/vaultwall-labvault" pki --dir "$1" --days 30 \
    --san DNS:contoso-prod.vault.lab --san DNS:contoso-cmk.vault.lab \
    --san IP:203.0.113.10 --san IP:203.0.113.20 --san IP:198.19.1.100
}

install_config() {
  mkdir -p "$ETC" "$LOG_DIR"
  if [ -f "$ETC/rules.yaml" ]; then
    say "keeping $ETC/rules.yaml"
  else
    install -m 0644 "$SRC/vagrant/vault/rules.yaml" "$ETC/rules.yaml"
  fi
  install -m 0644 "$SRC/rules/trusted-services.yaml" "$ETC/trusted-services.yaml"
  if [ -f "$ETC/pki/issuer.key" ]; then
    say "keeping the lab PKI in $ETC/pki"
  else
    make_pki "$ETC/pki"
  fi
}

main() {
  [ -x "$SRC/scripts/deps.sh" ] || die "$SRC/scripts/deps.sh missing: is the rsync synced folder there?"
  say "scripts/deps.sh (Debian packages)"
  "$SRC/scripts/deps.sh"
  say "scripts/build.sh (into $SRC/build; takes a while)"
  "$SRC/scripts/build.sh"
  # The lab vault (not part of the package) and the token tool.
  [ -x "$SRC/build/bin/vaultwall-labvault" ] || die "the build made no $SRC/build/bin/vaultwall-labvault"
  ln -sf "$SRC/build/bin/vaultwall-labvault" /usr/local/bin/vaultwall-labvault
  install -m 0755 "$SRC/vagrant/vault/vaultwall-vm-token" /usr/local/bin/vaultwall-vm-token
  install -m 0644 "$SRC/vagrant/vault/vaultwall-labvault.service" /etc/systemd/system/
  # The lab's rules first, so the package keeps them as the administrator's
  # /etc/vaultwall/rules.yaml (--force-confold) instead of its empty default.
  install_config
  say "the vaultwall package (cmake --build build --target package), as the README installs it"
  cmake --build "$SRC/build" --target package
  local deb
  deb=$(ls "$SRC"/build/vaultwall_*_amd64.deb)
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o Dpkg::Options::=--force-confold "$deb"
  systemctl daemon-reload
  say "vault: vaultwall installed"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then main "$@"; fi
