#!/usr/bin/env bash
# fleet.sh: the fleet benchmark (issue 11). One etcd on loopback and N vault
# hosts on this machine, each a network namespace with a veth pair and
# vaultwall attached (native XDP, small maps) and its own vaultwalld --etcd
# watching the same rule set. vaultwall-fleet-bench then publishes --rounds
# one-rule changes (each once every host applied the previous) and one
# revision with --big rules, and reports publish-to-applied latency per host
# (p50, p99, max over all hosts and publishes), beside etcd's and the
# daemons' resident memory, the CPU seconds the daemons spent on the big
# set, and (the hosts stopped) etcd's own fan-out of one more big revision to
# as many watchers.
#
#   tools/bench/fleet.sh [--hosts 100] [--rounds 20] [--big 100000]
#
# Targets: p99 < 1 s for the one-rule change at 100 hosts; the 100k-rule
# set applied on every host in < 5 s. The machine's cores are shared by every
# host (and by whatever else runs): the figures are an upper bound for hosts
# that each have their own CPU.
#
# Maps per host: --max-rules 131072, --lookup-blocks 2048 (2 MiB stride
# tables per rule set). etcd runs with --max-request-bytes 8 MiB (the
# 100k-rule revision is ~1.4 MB; etcd's default limit is 1.5 MiB).
# Namespaces vwbf* and pins under /sys/fs/bpf/vwbf are removed on exit.
set -euo pipefail

. "$(dirname "$(readlink -f "$0")")/common.sh"
P=vwbf
HOSTS=100
ROUNDS=20
BIG=100000
die() { echo "fleet.sh: $*" >&2; exit 1; }
while [ $# -gt 0 ]; do
  case "$1" in
    --hosts) HOSTS=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --big) BIG=$2; shift 2 ;;
    -h|--help) print_help "$0"; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done
require_root "namespaces, XDP"
require_tools etcd ip nsenter python3
require_binaries vaultwalld vaultwall-loader vaultwall-fleet-bench

W=$(mktemp -d /tmp/vwbf.XXXXXX)
ETCD_PID=""
DAEMON_PIDS=()
cleanup() {
  for p in "${DAEMON_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${DAEMON_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  [ -n "$ETCD_PID" ] && { kill "$ETCD_PID" 2>/dev/null || true; wait "$ETCD_PID" 2>/dev/null || true; }
  for i in $(seq 1 "$HOSTS"); do ip netns del "$P$i" 2>/dev/null || true; done
  rm -rf "/sys/fs/bpf/$P" "$W"
}
trap cleanup EXIT

read -r CPORT PPORT < <(python3 -c 'import socket
s=[socket.socket() for _ in range(2)]
[x.bind(("127.0.0.1",0)) for x in s]
print(*[x.getsockname()[1] for x in s])')
URL=http://127.0.0.1:$CPORT
# The daemons run in their own namespaces: they reach etcd on a local socket
# (etcd creates it in its working directory as localhost:PORT).
SOCK_URL=unix://$W/localhost:$CPORT
(cd "$W" && exec etcd --name bench --data-dir "$W/etcd" --listen-client-urls "$URL,unix://localhost:$CPORT" \
  --advertise-client-urls "$URL" \
  --listen-peer-urls "http://127.0.0.1:$PPORT" --initial-advertise-peer-urls "http://127.0.0.1:$PPORT" \
  --initial-cluster "bench=http://127.0.0.1:$PPORT" --max-request-bytes 8388608 \
  --logger zap --log-level warn >"$W/etcd.log" 2>&1) &
ETCD_PID=$!
for _ in $(seq 50); do ETCDCTL_API=3 etcdctl --endpoints "$URL" endpoint health >/dev/null 2>&1 && break; sleep 0.1; done

mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
mkdir -p "$W/rules"
cp "$ROOT/rules/trusted-services.yaml" "$W/rules/"
"$BIN/vaultwall-fleet-bench" seed --etcd "$URL" --ruleset bench --dir "$W/rules" >/dev/null

echo "fleet.sh: starting $HOSTS hosts (netns + veth + XDP + vaultwalld) at $(date -u +%T)"
t0=$(date +%s)
for i in $(seq 1 "$HOSTS"); do
  ip netns add "$P$i"
  ip -n "$P$i" link add eth0 type veth peer name peer0
  ip -n "$P$i" link set eth0 up
  ip -n "$P$i" link set peer0 up
  nsenter --net="/run/netns/$P$i" "$BIN/vaultwall-loader" attach --dev eth0 --mode native \
    --pin-dir "/sys/fs/bpf/$P/h$i" --max-rules 131072 --lookup-blocks 2048 >/dev/null
  nsenter --net="/run/netns/$P$i" "$BIN/vaultwalld" --etcd "$SOCK_URL" --ruleset bench --host-id "h$i" \
    --pin-dir "/sys/fs/bpf/$P/h$i" --socket "$W/h$i.sock" --state-dir "$W/state/h$i" \
    --ruleset-dir "$W/rules" --no-gate --log-level warn >"$W/h$i.log" 2>&1 &
  DAEMON_PIDS+=($!)
done
echo "fleet.sh: $HOSTS hosts started in $(($(date +%s) - t0)) s; load $(cut -d' ' -f1-3 /proc/loadavg)"

# CPU seconds (user + system) every daemon has used so far, summed.
cpu_s() {
  local p sum=0 t
  for p in "${DAEMON_PIDS[@]}"; do
    t=$(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0); sum=$((sum + t))
  done
  awk -v t="$sum" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", t / hz }'
}
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
report_memory() {  # report_memory LABEL
  local total=0 max=0 r
  for p in "${DAEMON_PIDS[@]}"; do
    r=$(rss_kb "$p"); total=$((total + r)); [ "$r" -gt "$max" ] && max=$r
  done
  echo "memory ($1): etcd RSS $(($(rss_kb "$ETCD_PID") / 1024)) MiB; vaultwalld RSS total $((total / 1024)) MiB," \
       "mean $((total / HOSTS / 1024)) MiB, max $((max / 1024)) MiB; etcd db $(du -sm "$W/etcd" | cut -f1) MiB"
}

"$BIN/vaultwall-fleet-bench" run --etcd "$URL" --ruleset bench --dir "$W/rules" --hosts "$HOSTS" \
  --rounds "$ROUNDS" --big 0 --timeout 120
report_memory "after the one-rule changes"
if [ "$BIG" -gt 0 ]; then
  c0=$(cpu_s)
  "$BIN/vaultwall-fleet-bench" run --etcd "$URL" --ruleset bench --dir "$W/rules" --hosts "$HOSTS" \
    --rounds 0 --big "$BIG" --timeout 300
  c1=$(cpu_s)
  # What stands between the publish and the last host on this machine: every
  # host's apply, on the cores they share (a floor: total CPU / cores).
  awk -v a="$c0" -v b="$c1" -v n="$HOSTS" -v cores="$(nproc)" 'BEGIN {
    printf "cpu (the %s-rule set): the daemons used %.2f CPU s in all, %.3f per host; / %d cores = %.2f s at the least\n",
           "'"$BIG"'", b - a, (b - a) / n, cores, (b - a) / cores }'
  report_memory "with the $BIG-rule set"
fi
alive=0
for p in "${DAEMON_PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=$((alive + 1)); done
echo "fleet.sh: $alive of $HOSTS daemons still running at the end"
if [ "$BIG" -gt 0 ]; then
  # etcd's part alone: the hosts stopped, as many watchers (one connection
  # each) receive one more big revision.
  for p in "${DAEMON_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${DAEMON_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  DAEMON_PIDS=()
  echo "fleet.sh: etcd fan-out of a $BIG-rule revision to $HOSTS watchers (no daemon running):"
  "$BIN/vaultwall-fleet-bench" fanout --etcd "$URL" --ruleset bench --dir "$W/rules" --hosts "$HOSTS" \
    --big "$BIG" --timeout 120
fi
