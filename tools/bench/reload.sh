#!/usr/bin/env bash
# reload.sh: the control plane end to end (issue 10). `vaultwallctl reload
# FILE` timed from the command to its answer (file -> enforced) against a
# real vaultwalld on a veth interface under XDP, beside `ipset restore` and
# `nft -f` of the same prefixes measured in the same run; a one-rule edit of
# the file + reload; `vaultwallctl rule add` (one rule, persisted in an
# ip_rules_file); the daemon's peak RSS (VmHWM) after each case.
#
#   tools/bench/reload.sh [--quick] [--cases LIST] [--repeats N] [--adds N]
#                         [--no-peers] [--perf DIR]
#
# Cases (name:rules:vaults:format, format yaml = ip_rules lists in the rule
# file, file = one ip_rules_file per vault, file6 = the same with IPv6 rules
# and an IPv6 endpoint per vault, edited and `rule add`ed with IPv6
# addresses):
#   100k-1v-yaml 100k-8v-yaml 1m-8v-yaml 1m-8v-file 250k-1v-yaml 250k-1v-file
# (and on request with --cases, e.g. 100k-8v-file6:100000:8:file6).
# --quick: 10k over 1 and 8 vaults (a smoke check, a few seconds).
# --adds N: `rule add`s per repeat (each a new address; median of all).
# --no-peers: skip ipset and nft (for a second run of the same cases with
# other binaries, VW_BIN=DIR: a before/after of the daemon alone).
# --perf DIR: `perf record -g` the daemon during the last (phase-timed) load
# of each case, into DIR/CASE.perf.data (read with `perf report -i`).
# Rules: 70% /32, the rest /24../31, distinct, inside 198.18.0.0/15 (SPEC
# section 6), as in issue 10's measurements; IPv6 (file6): 70% /128, 20% /64,
# 10% /48../60, distinct, inside 2001:db8::/33 (edits use 2001:db8:ffff::/48,
# which they never hold). Each case runs in a fresh
# daemon (started on an empty rule set, so its RSS is the case's), median of
# --repeats (default 3) for each timing.
#
# Peers: `ipset restore` of one hash:net set per vault (the same prefixes)
# and `nft -f` of one table with one interval set per vault, each into a
# fresh namespace. Namespaces vwbr-* are created here and removed on exit.
set -euo pipefail

. "$(dirname "$(readlink -f "$0")")/common.sh"
P=vwbr
QUICK=0
CASES=""
REPEATS=3
ADDS=1
PEERS=1
PERF_DIR=""
while [ $# -gt 0 ]; do
  case $1 in
    --quick) QUICK=1 ;;
    --cases) CASES=$2; shift ;;
    --repeats) REPEATS=$2; shift ;;
    --adds) ADDS=$2; shift ;;
    --no-peers) PEERS=0 ;;
    --perf) PERF_DIR=$(readlink -f "$2"); shift ;;
    -h|--help) print_help "$0"; exit 0 ;;
    *) echo "reload.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
die() { echo "reload.sh: $*" >&2; exit 1; }
require_root "XDP, namespaces"
require_tools ip ipset nft python3 nsenter
require_binaries vaultwall-loader vaultwalld vaultwallctl
if [ "$QUICK" = 1 ]; then
  CASES=${CASES:-10k-1v:10000:1:yaml,10k-8v:10000:8:file}
  REPEATS=1
else
  CASES=${CASES:-100k-1v-yaml:100000:1:yaml,100k-8v-yaml:100000:8:yaml,1m-8v-yaml:1000000:8:yaml,1m-8v-file:1000000:8:file,250k-1v-yaml:250000:1:yaml,250k-1v-file:250000:1:file}
fi

WORK=$(mktemp -d /tmp/vwbr.XXXXXX)
PIN=/sys/fs/bpf/$P$$
DPID=""
cleanup() {
  [ -n "$DPID" ] && kill "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null || true
  nsenter --net=/run/netns/$P-r "$BIN/vaultwall-loader" detach --dev vr0 --pin-dir "$PIN" >/dev/null 2>&1 || true
  for ns in $P-r $P-s $P-ipset $P-nft; do ip netns del "$ns" 2>/dev/null || true; done
  rm -rf "$WORK" "$PIN"
}
trap cleanup EXIT
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
for ns in $P-r $P-s; do ip netns add "$ns"; done
ip link add vs0 netns $P-s type veth peer name vr0 netns $P-r
ip -n $P-s link set vs0 up; ip -n $P-r link set vr0 up
nsenter --net=/run/netns/$P-r "$BIN/vaultwall-loader" attach --dev vr0 --pin-dir "$PIN" \
  --max-rules 2200000 >/dev/null
SOCK=$WORK/ctl.sock
ctl() { "$BIN/vaultwallctl" --socket "$SOCK" --pin-dir "$PIN" "$@"; }
now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# gen.py RULES VAULTS FORMAT DIR: rules.yaml (+ vault-N.rules), ipset.txt, nft.txt
cat > "$WORK/gen.py" <<'PY'
import ipaddress, random, sys, os
n, vaults, fmt, d = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
v6 = fmt == "file6"
rng = random.Random(10)
base = (198 << 24) | (18 << 16)            # 198.18.0.0/15
base6 = 0x20010db8 << 96                   # 2001:db8::/33
seen = set(); rules = [[] for _ in range(vaults)]
i = 0
while i < n:
    if v6:
        p = rng.random()
        ln = 128 if p < 0.7 else 64 if p < 0.9 else rng.choice((48, 52, 56, 60))
        a = (base6 | rng.getrandbits(95)) & (((1 << 128) - 1) ^ ((1 << (128 - ln)) - 1))
    else:
        ln = 32 if rng.random() < 0.7 else rng.randint(24, 31)
        a = (base | rng.getrandbits(17)) & ((0xffffffff << (32 - ln)) & 0xffffffff)
    v = i % vaults
    if (v, a, ln) in seen: continue
    seen.add((v, a, ln)); rules[v].append((a, ln)); i += 1
def s(a, ln):
    if v6:
        q = str(ipaddress.IPv6Address(a))
        return q if ln == 128 else "%s/%d" % (q, ln)
    q = "%d.%d.%d.%d" % (a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255)
    return q if ln == 32 else "%s/%d" % (q, ln)
family, nft_type = ("inet6", "ipv6_addr") if v6 else ("inet", "ipv4_addr")
with open(os.path.join(d, "rules.yaml"), "w") as f:
    f.write("version: 1\nhost:\n  vteps: [198.18.0.0/24]\nvaults:\n")
    for v in range(vaults):
        f.write("  - name: bench-%d\n    tenant_id: 3f1c9a52-7d0e-4b8a-9c11-5e2f0a6d4b10\n"
                "    subscription_id: 0b1f6471-1bf0-4dda-aec3-cb9272f09590\n    location: lab\n"
                "    upstream: http://127.0.0.1:8200\n    endpoints: [203.0.113.%d:443%s]\n"
                "    network_acls:\n      default_action: deny\n      bypass: none\n"
                % (v, v + 1, ', "[2001:db8:ffff::%x]:443"' % (v + 1) if v6 else ""))
        if fmt in ("file", "file6"):
            f.write("      ip_rules_file: vault-%d.rules\n" % v)
            with open(os.path.join(d, "vault-%d.rules" % v), "w") as g:
                g.write("".join(s(a, ln) + "\n" for a, ln in rules[v]))
        else:
            f.write("      ip_rules:\n" + "".join("        - %s\n" % s(a, ln) for a, ln in rules[v]))
with open(os.path.join(d, "ipset.txt"), "w") as f:
    for v in range(vaults):
        f.write("create bench-%d hash:net family %s hashsize 65536 maxelem %d\n" % (v, family, max(65536, 2 * len(rules[v]))))
        f.write("".join("add bench-%d %s\n" % (v, s(a, ln)) for a, ln in rules[v]))
with open(os.path.join(d, "nft.txt"), "w") as f:
    f.write("table inet vwbench {\n")
    for v in range(vaults):
        # auto-merge: an interval set refuses overlapping elements otherwise
        # (a /32 inside a /24 of the same vault); ipset and we take them as they are.
        f.write("  set bench%d { type %s; flags interval; auto-merge; elements = { %s } }\n"
                % (v, nft_type, ", ".join(s(a, ln) for a, ln in rules[v])))
    f.write("}\n")
PY

start_daemon() {  # an empty rule set: the case's file is then loaded by reload
  printf 'version: 1\nvaults: []\n' > "$WORK/empty.yaml"
  nsenter --net=/run/netns/$P-r "$BIN/vaultwalld" --config "$WORK/empty.yaml" --socket "$SOCK" \
    --pin-dir "$PIN" --no-gate >"$WORK/vaultwalld.log" 2>&1 &
  DPID=$!
  for _ in $(seq 300); do ctl status >/dev/null 2>&1 && return 0; sleep 0.05; done
  die "vaultwalld did not start: $(tail -3 "$WORK/vaultwalld.log")"
}
stop_daemon() { kill "$DPID"; wait "$DPID" 2>/dev/null || true; DPID=""; }
timed() {  # timed CMD...: seconds (the command must succeed)
  local t0 t1; t0=$(now); "$@" >/dev/null 2>"$WORK/last.err" || die "failed: $* ($(head -c 300 "$WORK/last.err"))"; t1=$(now)
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f\n", b - a }' 
}
peer_ipset() { ip netns add $P-ipset; local t; t=$(timed nsenter --net=/run/netns/$P-ipset ipset restore -f "$1"); ip netns del $P-ipset; echo "$t"; }
peer_nft() { ip netns add $P-nft; local t; t=$(timed nsenter --net=/run/netns/$P-nft nft -f "$1"); ip netns del $P-nft; echo "$t"; }

# phased NAME REQUEST: the daemon's phase times for REQUEST ("parse=12 ...").
phased() {
  local perf_pid="" out
  if [ -n "$PERF_DIR" ]; then
    mkdir -p "$PERF_DIR"
    perf record -q -g -p "$DPID" -o "$PERF_DIR/$1.perf.data" >/dev/null 2>&1 &
    perf_pid=$!; sleep 2
  fi
  out=$(python3 - "$SOCK" "$2" <<'PY'
import json, socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
s.sendall((sys.argv[2] + "\n").encode())
buf = b""
while not buf.endswith(b"\n"): buf += s.recv(65536)
r = json.loads(buf)
if not r.get("ok"): sys.exit("failed: " + r.get("error", "?"))
if "phases" not in r: sys.exit("no phases: nothing changed? " + json.dumps(r))
print(" ".join("%s%s=%.0f" % (p["phase"], ":" + p["dev"] if "dev" in p else "", p["ms"]) for p in r.get("phases", []))
      + " (all=%.0f)" % r["took_ms"])
PY
) || die "$1: $out"
  [ -n "$perf_pid" ] && { kill -INT "$perf_pid"; wait "$perf_pid" || true; }
  echo "$out"
}

printf '%-14s %9s %9s %9s %9s %9s %9s %8s  %s\n' case reload_s edit_s rule_add_ms ipset_s nft_s reload/ipset rss_MB "phases of one load"
IFS=, read -r -a CASE_LIST <<<"$CASES"
for c in "${CASE_LIST[@]}"; do
  IFS=: read -r name n vaults fmt <<<"$c"
  d=$WORK/$name; mkdir -p "$d"
  python3 "$WORK/gen.py" "$n" "$vaults" "$fmt" "$d"
  start_daemon
  loads=(); edits=(); adds=(); ipsets=(); nfts=()
  for r in $(seq "$REPEATS"); do
    # A full load: from the empty set to the case's rules.
    ctl reload "$WORK/empty.yaml" >/dev/null
    loads+=("$(timed ctl reload "$d/rules.yaml")")
    # One-rule edit of the file + reload.
    # (Edits use 192.0.2.0/24 and 2001:db8:ffff::/48, which the generated
    # rules never hold: each one really changes the set.)
    if [ "$fmt" = file6 ]; then echo "2001:db8:ffff:ff00::$r" >> "$d/vault-0.rules"
    elif [ "$fmt" = file ]; then echo "192.0.2.$r" >> "$d/vault-0.rules"
    else sed -i "0,/^      ip_rules:\$/s//      ip_rules:\n        - 192.0.2.$r/" "$d/rules.yaml"; fi
    edits+=("$(timed ctl reload "$d/rules.yaml")")
    if [ "$fmt" != yaml ]; then
      for a in $(seq "$ADDS"); do
        k=$(( (r - 1) * ADDS + a ))
        if [ "$fmt" = file6 ]; then ip=2001:db8:ffff:ff01::$k; else ip=192.0.2.$((100 + k % 150)); fi
        adds+=("$(timed ctl rule add --vault bench-0 --ip "$ip" | awk '{ printf "%.1f", $1 * 1000 }')")
      done
    fi
    if [ "$PEERS" = 1 ]; then
      ipsets+=("$(peer_ipset "$d/ipset.txt")")
      nfts+=("$(peer_nft "$d/nft.txt")")
    fi
  done
  # Where the time of one more load (and of one more rule add) goes: the
  # daemon's own phase times, with perf recording the daemon if asked.
  ctl reload "$WORK/empty.yaml" >/dev/null
  phases=$(phased "$name" "{\"cmd\": \"reload\", \"file\": \"$d/rules.yaml\"}")
  add_phases=""
  if [ "$fmt" != yaml ]; then
    add_ip=192.0.2.250; [ "$fmt" = file6 ] && add_ip=2001:db8:ffff:ff02::1
    add_phases=$(phased "$name-rule-add" "{\"cmd\": \"rule\", \"op\": \"add\", \"vault\": \"bench-0\", \"ips\": [\"$add_ip\"]}")
  fi
  rss=$(awk '/VmHWM/ {printf "%.0f", $2/1024}' /proc/$DPID/status)
  L=$(printf '%s\n' "${loads[@]}" | median); E=$(printf '%s\n' "${edits[@]}" | median)
  A=-; [ ${#adds[@]} -gt 0 ] && A=$(printf '%s\n' "${adds[@]}" | median)
  I=-; N=-; RATIO=-
  if [ "$PEERS" = 1 ]; then
    I=$(printf '%s\n' "${ipsets[@]}" | median); N=$(printf '%s\n' "${nfts[@]}" | median)
    RATIO=$(awk -v l="$L" -v i="$I" 'BEGIN { printf "%.2f", l / i }')
  fi
  printf '%-14s %9.3f %9.3f %9s %9s %9s %9s %8s  %s\n' "$name" "$L" "$E" "$A" "$I" "$N" \
    "$RATIO" "$rss" "$phases (ms)"
  [ -n "$add_phases" ] && printf '%-14s %s\n' "" "rule add: $add_phases (ms)"
  stop_daemon
done
