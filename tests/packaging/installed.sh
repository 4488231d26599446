#!/usr/bin/env bash
# packaging.installed: vaultwall as a Debian host gets it (SPEC §10). As root:
#
#   1. build the package from this build (`cmake --build BUILD --target package`)
#      and run lintian on it (no warning or error; overrides state reasons);
#   2. `apt-get install ./vaultwall_*.deb` (dependencies from Debian);
#   3. check the installed files, conffiles and the `vaultwall` group, and
#      `systemd-analyze verify` the installed units;
#   4. start the installed vaultwalld exactly as vaultwalld.service does
#      (its ExecStart, under its CapabilityBoundingSet) on the shipped
#      /etc/vaultwall/rules.yaml: it answers on a control socket owned by the
#      vaultwall group;
#   5. run the lab's end-to-end steps (tools/vaultwall-lab) against the
#      installed /usr/sbin and /usr/bin programs, the daemon again under the
#      unit's capability bounding set (only the lab vault comes from the build);
#   6. `apt-get purge vaultwall`, then check that nothing of it is left but
#      the `vaultwall` group (Debian keeps system groups).
#
# Refuses to run when a vaultwall package is installed already (it would be
# replaced and purged). Env: VW_BUILD_DIR (default ./build).
set -euo pipefail
ROOT=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
BUILD=$(cd "${VW_BUILD_DIR:-$ROOT/build}" && pwd)
LAB=$ROOT/tools/vaultwall-lab
die() { echo "packaging.installed: $*" >&2; exit 1; }
step() { printf '== %s\n' "$*"; }

[ "$(id -u)" -eq 0 ] || die "run as root (apt-get, XDP, namespaces)"
if dpkg-query -W -f='${Status}' vaultwall 2>/dev/null | grep -q "ok installed"; then
  die "a vaultwall package is installed already; this test would replace and purge it"
fi

WORK=$(mktemp -d /tmp/vw-pkg.XXXXXX)
NS=vwpkg$$
PIN=/sys/fs/bpf/$NS
DPID=""
LAB_UP=0
# What the package and its programs can leave: its files (from the .deb),
# what dpkg keeps about it, the logs and runtime directory, unit enablement.
leftovers() {
  { dpkg-deb -c "$DEB" | awk '{ print $6 }' | sed 's|^\./|/|; s|/$||' | grep vaultwall
    echo /var/log/vaultwall; echo /run/vaultwall; echo /etc/vaultwall
    ls -d /var/lib/dpkg/info/vaultwall.* /etc/systemd/system/*/vaultwall* 2>/dev/null || true
  } | sort -u | while read -r p; do if [ -e "$p" ]; then echo "$p"; fi; done
  return 0
}
cleanup() {
  set +e
  [ -n "$DPID" ] && kill "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null
  [ "$LAB_UP" = 1 ] && VW_BIN=$WORK/bin "$LAB" down >/dev/null 2>&1
  ip netns del "$NS" 2>/dev/null
  rm -rf "$PIN" "$WORK"
  if dpkg-query -W -f='${Status}' vaultwall 2>/dev/null | grep -q "installed"; then
    DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq vaultwall >/dev/null 2>&1
  fi
}
trap cleanup EXIT

step "1. the package, from the build"
rm -f "$BUILD"/vaultwall_*.deb
cmake --build "$BUILD" --target package >"$WORK/cpack.log" 2>&1 || { cat "$WORK/cpack.log" >&2; die "cpack failed"; }
DEB=$(ls "$BUILD"/vaultwall_*_amd64.deb)
echo "   $(basename "$DEB")"
leftovers > "$WORK/before"
[ ! -s "$WORK/before" ] || die "files of the package exist before it is installed: $(cat "$WORK/before")"
# lintian warns when run as root; it runs on the package file only.
lintian --fail-on error,warning "$DEB" 2>&1 | grep -v '^running with root privileges' | sed 's/^/   lintian: /' ||
  true
lintian --fail-on error,warning "$DEB" >/dev/null 2>&1 || die "lintian found warnings or errors (above)"
echo "   lintian: no warnings, no errors"

step "2. apt-get install ./$(basename "$DEB")"
cp "$DEB" "$WORK/"
(cd "$WORK" && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "./$(basename "$DEB")") \
  >"$WORK/apt.log" 2>&1 || { cat "$WORK/apt.log" >&2; die "apt-get install failed"; }

step "3. files, conffiles, group, units"
for f in /usr/sbin/vaultwall-loader /usr/sbin/vaultwalld /usr/bin/vaultwallctl; do
  [ -x "$f" ] || die "$f is not installed"
done
for f in /usr/share/vaultwall/trusted-services.yaml /usr/share/vaultwall/example.yaml /etc/vaultwall/rules.yaml \
         /etc/logrotate.d/vaultwall /lib/systemd/system/vaultwalld.service \
         /lib/systemd/system/vaultwall-attach@.service /usr/share/doc/vaultwall/copyright; do
  [ -f "$f" ] || die "$f is not installed"
done
conffiles=$(dpkg-query -W -f='${Conffiles}\n' vaultwall)
grep -q ' /etc/vaultwall/rules.yaml ' <<<"$conffiles" || die "/etc/vaultwall/rules.yaml is not a conffile"
getent group vaultwall >/dev/null || die "postinst made no vaultwall group"
/usr/sbin/vaultwalld --help >/dev/null || die "the installed vaultwalld does not run"
/usr/bin/vaultwallctl check /etc/vaultwall/rules.yaml >/dev/null || die "the shipped /etc/vaultwall/rules.yaml does not pass check"
systemd-analyze verify /lib/systemd/system/vaultwalld.service /lib/systemd/system/vaultwall-attach@.service \
  || die "systemd-analyze verify refused the installed units"
echo "   ok: programs, catalog and example, conffile, group vaultwall, units verified"

# The unit's CapabilityBoundingSet as setpriv's --bounding-set argument.
bounding_set() {
  local caps
  caps=$(sed -n 's/^CapabilityBoundingSet=//p' "$1")
  [ -n "$caps" ] || die "$1 has no CapabilityBoundingSet"
  echo "-all$(for c in $caps; do printf ',+%s' "$(tr 'A-Z' 'a-z' <<<"${c#CAP_}")"; done)"
}
DAEMON_CAPS=$(bounding_set /lib/systemd/system/vaultwalld.service)
ATTACH_CAPS=$(bounding_set /lib/systemd/system/vaultwall-attach@.service)
ExecStart=$(sed -n 's/^ExecStart=//p' /lib/systemd/system/vaultwalld.service)
# vaultwall-attach@vr0's commands, with this test's pin dir.
unit_cmd() { sed -n "s/^$1=//p" /lib/systemd/system/vaultwall-attach@.service | sed 's/%I/vr0/g'; }
ATTACH=$(unit_cmd ExecStart)
DETACH=$(unit_cmd ExecStop)

step "4. the units' commands under their capabilities: attach ($ATTACH_CAPS), vaultwalld ($DAEMON_CAPS) on the shipped rules, detach"
ip netns add "$NS"
ip -n "$NS" link add vr0 type veth peer name vs0
ip -n "$NS" link set vr0 up; ip -n "$NS" link set vs0 up
# shellcheck disable=SC2086  # the unit's command lines
nsenter --net="/run/netns/$NS" setpriv --bounding-set="$ATTACH_CAPS" -- $ATTACH --pin-dir "$PIN" >/dev/null ||
  die "vaultwall-attach@'s ExecStart failed under its CapabilityBoundingSet"
# shellcheck disable=SC2086  # ExecStart is a command line
nsenter --net="/run/netns/$NS" setpriv --bounding-set="$DAEMON_CAPS" -- $ExecStart \
  --socket "$WORK/ctl.sock" --pin-dir "$PIN" >"$WORK/vaultwalld.log" 2>&1 &
DPID=$!
for _ in $(seq 100); do
  /usr/bin/vaultwallctl --socket "$WORK/ctl.sock" status --json >"$WORK/status.json" 2>/dev/null && break
  kill -0 "$DPID" 2>/dev/null || { cat "$WORK/vaultwalld.log" >&2; die "vaultwalld exited on the shipped rules"; }
  sleep 0.1
done
[ "$(jq -r .config "$WORK/status.json")" = /etc/vaultwall/rules.yaml ] || die "no answer from vaultwalld: $(cat "$WORK/vaultwalld.log")"
[ "$(jq -r '.interfaces[0].generation' "$WORK/status.json")" -ge 1 ] || die "vaultwalld installed no rules on vr0"
sock=$(stat -c '%A %U:%G' "$WORK/ctl.sock")
[ "${sock#* }" = root:vaultwall ] || die "the control socket is not the vaultwall group's: $sock"
kill "$DPID"; wait "$DPID" || true; DPID=""
# shellcheck disable=SC2086
nsenter --net="/run/netns/$NS" setpriv --bounding-set="$ATTACH_CAPS" -- $DETACH --pin-dir "$PIN" >/dev/null ||
  die "vaultwall-attach@'s ExecStop failed under its CapabilityBoundingSet"
[ ! -e "$PIN/vr0" ] || die "ExecStop left the pins in $PIN/vr0"
echo "   ok: attached and detached vr0; vaultwalld loads /etc/vaultwall/rules.yaml and installs it; control socket $sock"

step "5. the lab's end-to-end steps on the installed programs"
mkdir -p "$WORK/bin"
ln -s /usr/sbin/vaultwall-loader /usr/bin/vaultwallctl "$WORK/bin/"
ln -s "$BUILD/bin/vaultwall-labvault" "$WORK/bin/"  # the stand-in vault is not part of the package
printf '#!/bin/sh\nexec setpriv --bounding-set=%s -- /usr/sbin/vaultwalld "$@"\n' "$DAEMON_CAPS" >"$WORK/bin/vaultwalld"
chmod 755 "$WORK/bin/vaultwalld"
export VW_BIN=$WORK/bin
"$LAB" up  # refuses when a lab is up already; tears itself down when it fails
LAB_UP=1
for s in allowed denied trusted tokens reload counters; do "$LAB" check "$s"; done
"$LAB" down
LAB_UP=0

step "6. apt-get purge vaultwall"
DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq vaultwall >"$WORK/purge.log" 2>&1 ||
  { cat "$WORK/purge.log" >&2; die "apt-get purge failed"; }
dpkg-query -W -f='${Status}' vaultwall 2>/dev/null | grep -q "installed" && die "vaultwall is still installed"
leftovers > "$WORK/after"
[ ! -s "$WORK/after" ] || die "purge left these behind: $(tr '\n' ' ' <"$WORK/after")"
getent group vaultwall >/dev/null && echo "   the vaultwall group stays (Debian keeps system groups)"
echo "   ok: nothing else is left"
echo "packaging.installed: ok"
