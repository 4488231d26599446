#!/usr/bin/env bash
# vault VM, first provisioning only: install vaultwall with the project's own
# steps from the rsync copy of the repository, then the lab's configuration.
#
#   /opt/vaultwall                  the repository (vagrant rsync vault)
#   /opt/vaultwall/build/bin        the binaries (scripts/build.sh), linked
#                                   into /usr/local/bin
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

b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }
hex_to_bin() { sed 's/../\\x&/g' | xargs -0 printf '%b'; }

# The lab's PKI, as tools/vaultwall-lab makes it at `up` (valid 30 days here).
make_pki() {
  local d=$1
  mkdir -p "$d"
  chmod 700 "$d"
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=vaultwall lab CA" \
    -keyout "$d/ca.key" -out "$d/ca.pem" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=contoso-prod.vault.lab" \
    -keyout "$d/vault.key" -out "$d/vault.csr" 2>/dev/null
  printf 'subjectAltName=DNS:contoso-prod.vault.lab,DNS:contoso-cmk.vault.lab,IP:203.0.113.10,IP:203.0.113.20,IP:198.19.1.100\nextendedKeyUsage=serverAuth\n' > "$d/san.ext"
  openssl x509 -req -in "$d/vault.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial \
    -days 30 -extfile "$d/san.ext" -out "$d/vault.pem" 2>/dev/null
  # The lab token issuer: an RSA key and its JWKS (kid lab-1).
  openssl genrsa -out "$d/issuer.key" 2048 2>/dev/null
  local n
  n=$(openssl rsa -in "$d/issuer.key" -noout -modulus | cut -d= -f2 | hex_to_bin | b64url)
  printf '{"keys":[{"kty":"RSA","use":"sig","alg":"RS256","kid":"lab-1","n":"%s","e":"AQAB"}]}\n' "$n" > "$d/jwks.json"
  chmod 600 "$d"/*.key
  chmod 644 "$d/ca.pem"
}

install_config() {
  mkdir -p "$ETC" /var/log/vaultwall
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
  local b
  for b in vaultwall-loader vaultwalld vaultwallctl vaultwall-labvault; do
    [ -x "$SRC/build/bin/$b" ] || die "the build made no $SRC/build/bin/$b"
    ln -sf "$SRC/build/bin/$b" "/usr/local/bin/$b"
  done
  install -m 0755 "$SRC/vagrant/vault/vaultwall-vm-token" /usr/local/bin/vaultwall-vm-token
  install -m 0644 "$SRC/vagrant/vault/vaultwall-labvault.service" "$SRC/vagrant/vault/vaultwalld.service" \
    /etc/systemd/system/
  systemctl daemon-reload
  install_config
  say "vault: vaultwall installed"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then main "$@"; fi
