#!/usr/bin/env bash
# flood.sh: flood while serving (issue 13). Legitimate clients from an admitted
# network (vwl-alice, 192.0.2.10, in contoso-prod's ip_rules) make TLS
# requests through the gate in a loop (vaultwall-flood-client: a new
# connection, a full handshake and one GET each) while trafgen floods the vault
# host from vwl-mallory with TCP SYNs to the same endpoint (203.0.113.10:443)
# from random denied sources (198.51.100.0/24), at the fastest rate one
# sender core reaches. All inside the lab's namespaces (tools/vaultwall-lab
# up ... down; SPEC §6 addresses only, no route out); the flood is bounded by
# time and by a packet count, and goes only to the lab's vault host.
#
#   tools/bench/flood.sh [--test] [--seconds S] [--threads N] [--rounds R] [--drop-events N]
#
# Phases, S seconds of clients each (default 20; --test: 8):
#   vaultwall        XDP on the vault host's eth0 drops the flood (drop.no_rule)
#   vaultwall+flood
#   nftables         XDP detached; an nftables input rule equivalent to the
#   nftables+flood   vault's ACL (ip saddr != 192.0.2.0/24 drop) instead
#   xdp-floor        XDP detached; the least an XDP filter does instead: one
#   xdp-floor+flood  LPM lookup of the source a packet, no counters, no events
#                    (bpf/bench/baselines.bpf.c xdp_lpm_one, 192.0.2.0/24 in
#                    its trie): what native XDP on a veth costs by itself
# R rounds (default 3) of the phases, interleaved so that drift in the
# machine's load falls on every filter alike: each round starts with the next
# filter (the pinned vaultwall program is attached again when its turn comes).
# Prints per phase and round: requests, success rate, p50/p99/max latency,
# the flood's packets and rate; then a markdown table of the medians over the
# rounds for docs/benchmarks.md. The gate stays up throughout; without
# vaultwall's program it admits by its user-space check of the same ip_rules.
# --drop-events N: the lab's rules with host.drop_events_per_second: N (the
# default 1000; 0 sends no denied-flow events), to tell the events' share of
# vaultwall's cost from the verdict's.
# --test: the vaultwall phases only, and exit 1 unless the success rate under
# the flood is at least 99.9% (ctest e2e.flood). No timing is asserted.
set -euo pipefail
HERE=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)
. "$HERE/common.sh"
LAB=$ROOT/tools/vaultwall-lab
PIN_DIR=/sys/fs/bpf/vaultwall-lab  # the lab's (tools/vaultwall-lab)
MODE=bench SECONDS_PER=20 THREADS=2 ROUNDS=3
while [ $# -gt 0 ]; do
  case "$1" in
    --test) MODE=test; SECONDS_PER=8; shift ;;
    --seconds) SECONDS_PER=${2:?--seconds needs a number}; shift 2 ;;
    --threads) THREADS=${2:?--threads needs a number}; shift 2 ;;
    --rounds) ROUNDS=${2:?--rounds needs a number}; shift 2 ;;
    --drop-events) DROP_EVENTS=${2:?--drop-events needs a number}; shift 2 ;;
    -h|--help) print_help "$0"; exit 0 ;;
    *) echo "flood.sh: unknown argument $1 (--test, --seconds S, --threads N, --rounds R, --drop-events N)" >&2; exit 2 ;;
  esac
done
die() { echo "flood.sh: $*" >&2; exit 1; }
[[ "$SECONDS_PER" =~ ^[0-9]+$ ]] && [ "$SECONDS_PER" -gt 0 ] || die "--seconds wants a whole number"
[[ "$ROUNDS" =~ ^[0-9]+$ ]] && [ "$ROUNDS" -gt 0 ] || die "--rounds wants a whole number"
[ -z "${DROP_EVENTS:-}" ] || [[ "$DROP_EVENTS" =~ ^[0-9]+$ ]] || die "--drop-events wants a whole number"
[ "$MODE" = test ] && ROUNDS=1
require_root "namespaces, XDP, nftables"
require_tools trafgen nft jq ip nsenter timeout
require_binaries vaultwall-flood-client vaultwall-loader vaultwalld vaultwallctl vaultwall-labvault
FLOOR_OBJ=${VW_BENCH_OBJ:-${BIN%/bin}/gen/vw_bench_bpf.bpf.o}
FLOOR_PIN=/sys/fs/bpf/vwflood-floor
if [ "$MODE" = bench ]; then
  require_tools bpftool
  [ -f "$FLOOR_OBJ" ] || die "$FLOOR_OBJ is missing: build first (./scripts/build.sh) or set VW_BENCH_OBJ"
fi

WORK=$(mktemp -d /tmp/vw-flood.XXXXXX)
FLOOD_PID=""
cleanup() {
  set +e
  [ -n "$FLOOD_PID" ] && kill "$FLOOD_PID" 2>/dev/null && wait "$FLOOD_PID" 2>/dev/null
  "$LAB" down >/dev/null 2>&1
  rm -rf "$WORK" "$FLOOR_PIN"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ns() { local n=$1; shift; ip netns exec "vwl-$n" "$@"; }
"$LAB" status >/dev/null 2>&1 && "$LAB" down >/dev/null 2>&1 || true
"$LAB" up >"$WORK/lab.log" 2>&1 || { cat "$WORK/lab.log" >&2; die "the lab did not come up"; }
if [ -n "${DROP_EVENTS:-}" ]; then
  # The lab's rule file with the event rate set under host:, reloaded.
  sed -i "s/^host:\$/host:\n  drop_events_per_second: $DROP_EVENTS/" /run/vaultwall-lab/rules.yaml
  grep -qx "  drop_events_per_second: $DROP_EVENTS" /run/vaultwall-lab/rules.yaml ||
    die "the lab's rules.yaml has no host: section to set drop_events_per_second in"
  "$BIN/vaultwallctl" --socket /run/vaultwall-lab/ctl.sock reload >/dev/null ||
    die "the reload with drop_events_per_second: $DROP_EVENTS failed"
fi

"$LAB" token app >"$WORK/token"
"$LAB" curl alice -sS -o /dev/null -w '%{http_code}' --resolve contoso-prod.vault.lab:443:203.0.113.10 \
  -X PUT -H "Authorization: Bearer $(cat "$WORK/token")" -H 'Content-Type: application/json' \
  --data '{"value":"flood"}' 'https://contoso-prod.vault.lab/secrets/flood?api-version=7.4' >"$WORK/put.code" || true
[ "$(cat "$WORK/put.code")" = 200 ] || die "could not store the test secret (HTTP $(cat "$WORK/put.code"))"

# The flood: SYNs from 198.51.100.0/24 (random last octet: no ip_rule admits
# them) to the vault's endpoint, addressed to the vault host's MAC.
HOST_MAC=$(ns host ip -j link show eth0 | jq -r '.[0].address')
cat >"$WORK/flood.cfg" <<CFG
{ eth(da=$HOST_MAC, type=0x0800),
  ipv4(sa=198.51.100.1, sa[3]=drnd(), da=203.0.113.10, ttl=64),
  tcp(sp=drnd(), dp=443, syn, seq=drnd()) }
CFG

no_rule_drops() {
  "$BIN/vaultwallctl" --socket /run/vaultwall-lab/ctl.sock --pin-dir "$PIN_DIR" stats --json |
    jq '.vaults["contoso-prod"].drop.no_rule.packets // 0'
}
tx_packets() { ns mallory cat /sys/class/net/eth0/statistics/tx_packets; }

# Until the sender's counter stands still for half a second: trafgen's
# workers and TX ring drain after the signal, and must not spill into the
# next phase.
settle() {
  local a b i
  for i in $(seq 20); do
    a=$(tx_packets); sleep 0.5; b=$(tx_packets)
    [ "$a" = "$b" ] && return 0
  done
  die "the flood did not stop"
}

RESULTS=()
phase() {  # phase NAME FLOOD(0|1) ROUND
  local name=$1 flood=$2 round=$3 tx0 tx1 d0 d1 t0 t1 out
  tx0=$(tx_packets); d0=$(no_rule_drops 2>/dev/null || echo 0); t0=$(date +%s%N)
  if [ "$flood" = 1 ]; then
    # Bounded twice: by time, and by a count no sender here reaches in that time.
    ns mallory timeout $((SECONDS_PER + 3)) trafgen -o eth0 -i "$WORK/flood.cfg" -P 1 -q \
      -n $(((SECONDS_PER + 3) * 5000000)) >"$WORK/trafgen-$name.log" 2>&1 &
    FLOOD_PID=$!
    sleep 1  # the flood is at full rate before the clients start
  fi
  out=$(ns alice "$BIN/vaultwall-flood-client" --addr 203.0.113.10:443 --host contoso-prod.vault.lab \
          --path /secrets/flood --token-file "$WORK/token" --seconds "$SECONDS_PER" --threads "$THREADS")
  if [ -n "$FLOOD_PID" ]; then
    kill "$FLOOD_PID" 2>/dev/null || true
    wait "$FLOOD_PID" 2>/dev/null || true
    FLOOD_PID=""
    settle
  fi
  t1=$(date +%s%N); tx1=$(tx_packets); d1=$(no_rule_drops 2>/dev/null || echo 0)
  local sent=$((tx1 - tx0)) secs
  secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
  out=$(jq -c --arg name "$name" --argjson round "$round" --argjson sent "$sent" --argjson secs "$secs" --argjson dropped $((d1 - d0)) \
          '. + {phase: $name, round: $round, flood_packets: $sent, flood_kpps: ($sent / $secs / 1000 | floor), xdp_dropped: $dropped}' <<<"$out")
  echo "$out"
  RESULTS+=("$out")
}

echo "flood.sh ($MODE) at $(date -u +%FT%TZ); commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?');" \
     "nproc $(nproc); load $(cut -d' ' -f1-3 /proc/loadavg); $THREADS client threads, ${SECONDS_PER}s per phase, $ROUNDS round(s); drop_events_per_second ${DROP_EVENTS:-1000 (the default)}"

XDP_PROG=$PIN_DIR/eth0/prog_main
# Each filter in turn on the vault host's eth0; off() leaves it with none.
off() {
  ns host nft delete table inet vwflood 2>/dev/null || true
  ns host ip link set dev eth0 xdp off 2>/dev/null || true
  ns host ip -d link show eth0 | grep -q 'prog/xdp' && die "could not remove the XDP program from eth0"
  return 0
}
# vaultwall: the loader's pinned program (its maps, rules and counters
# untouched) attached again in native mode.
use_vaultwall() {
  off
  nsenter --net=/run/netns/vwl-host ip link set dev eth0 xdpdrv pinned "$XDP_PROG" ||
    die "could not attach $XDP_PROG again"
}
# nftables: the vault's ACL as an nftables rule on the input hook.
use_nftables() {
  off
  ns host nft -f - <<'NFT'
table inet vwflood {
  chain input {
    type filter hook input priority 0; policy accept;
    ip daddr 203.0.113.10 tcp dport 443 ip saddr != 192.0.2.0/24 drop
  }
}
NFT
}
# xdp-floor: the bench object's one-lookup program; its trie key is
# (32 + 24, vault = the destination's last byte 10, 192.0.2.0).
use_floor() {
  off
  if [ ! -e "$FLOOR_PIN/prog/xdp_lpm_one" ]; then
    mkdir -p "$FLOOR_PIN"
    bpftool prog loadall "$FLOOR_OBJ" "$FLOOR_PIN/prog" type xdp pinmaps "$FLOOR_PIN/maps" ||
      die "could not load $FLOOR_OBJ"
    bpftool map update pinned "$FLOOR_PIN/maps/bench_lpm" key 56 0 0 0 10 0 0 0 192 0 2 0 value 1 0 0 0 ||
      die "could not fill the floor program's trie"
  fi
  nsenter --net=/run/netns/vwl-host ip link set dev eth0 xdpdrv pinned "$FLOOR_PIN/prog/xdp_lpm_one" ||
    die "could not attach the floor program"
}
phases() {  # phases FILTER ROUND: FILTER's phases without and with the flood
  "use_${1#xdp-}"
  phase "$1" 0 "$2"; phase "$1+flood" 1 "$2"
}

FILTERS=(vaultwall nftables xdp-floor)
[ "$MODE" = test ] && FILTERS=(vaultwall)
for round in $(seq "$ROUNDS"); do
  n=${#FILTERS[@]}
  for i in $(seq 0 $((n - 1))); do
    phases "${FILTERS[$(( (round - 1 + i) % n ))]}" "$round"
  done
done
use_vaultwall

ALL=$(printf '%s\n' "${RESULTS[@]}" | jq -s -c .)
echo
echo "Medians over $ROUNDS round(s) (success: all requests of the phase's rounds together):"
echo
echo "| filter | flood kpps sent | requests | success | p50 ms | p99 ms | max ms |"
echo "|---|---|---|---|---|---|---|"
jq -r '
  def median: sort | if length % 2 == 1 then .[length / 2 | floor] else (.[length / 2 - 1] + .[length / 2]) / 2 end;
  def r2: . * 100 | round / 100;
  group_by(.phase) | sort_by(.[0].phase | {"vaultwall": 0, "vaultwall+flood": 1, "nftables": 2, "nftables+flood": 3, "xdp-floor": 4, "xdp-floor+flood": 5}[.])[] |
  "| \(.[0].phase) | \(if .[0].phase | endswith("flood") then (map(.flood_kpps) | median | floor | tostring) else "none" end) | \(map(.requests) | add) | \((map(.ok) | add) / (map(.requests) | add) * 10000 | floor / 100)% | \(map(.p50_ms) | median | r2) | \(map(.p99_ms) | median | r2) | \(map(.max_ms) | max * 10 | round / 10) |"
' <<<"$ALL"

rate=$(jq -r '[.[] | select(.phase == "vaultwall+flood")] | (map(.ok) | add) / (map(.requests) | add)' <<<"$ALL")
flood_sent=$(jq -r '[.[] | select(.phase | endswith("flood")) | .flood_packets] | min' <<<"$ALL")
[ "$flood_sent" -gt 0 ] || die "the flood sent nothing (trafgen log: $(tail -3 "$WORK/trafgen-vaultwall+flood.log"))"
if [ "$MODE" = test ]; then
  awk -v r="$rate" 'BEGIN { exit !(r >= 0.999) }' ||
    die "legitimate success under the flood is $rate, below 0.999"
  echo "flood.sh: legitimate success under the flood $rate (>= 0.999)"
fi
