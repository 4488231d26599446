#!/usr/bin/env bash
# wire.sh: the receive path on the wire (issue 6). trafgen in a sender
# namespace sends TCP SYNs over veth pairs into one receiver namespace per
# filter; we report the receiver's softirq CPU time per packet (the softirq
# column of /proc/stat: on veth the sender dominates packets/s, see
# ../../../shared/ENVIRONMENT.md), the cost each filter adds over the
# XDP_DROP floor, and vaultwall's added cost as a fraction of nftables' and
# ipset's. Medians over repeats; the filters are measured interleaved, so
# the machine's noise hits them alike.
#
#   tools/bench/wire.sh [--quick] [--ipv6] [--sizes 10000,100000,1000000] [--repeats N] [--packets N]
#
# Receivers (one namespace each, all fed by the same sender namespace):
#   floor      XDP_DROP-only program in native mode (the floor)
#   vaultwall  vaultwall-loader attach --mode native + vaultwalld with N ip_rules
#   nft        nftables netdev ingress: ip daddr vmap -> per-vault chain,
#              ip saddr != @set drop, the sets with flags interval (rbtree)
#   ipset      iptables raw PREROUTING, one rule per vault:
#              -d ENDPOINT -p tcp --dport 443 -m set ! --match-set VAULT src -j DROP
#              with one hash:net set per vault (this kernel has no hash:net,net)
#   none       no filter: the stack drops it (no route, forwarding off)
#
# Rules and traffic. N rules over 16 vaults (endpoints 203.0.113.1..16:443),
# sources in 198.18.0.0/15 with prefixes /24../32 (~70% /32) like
# vaultwall-bench's make_rules(), but all inside /24s with an even third
# octet. The traffic's sources are random over 198.18.0.0/15 with an odd third
# octet: every packet is denied by every filter after a full lookup that
# walks down to the rules' own /24s, so each filter's whole cost is on the
# receive path and all receivers end in the same verdict. (16 vaults, not
# make_rules()' 8: 1M distinct prefixes need that many inside the even half.)
#
# --ipv6 (issue 16): IPv6 SYNs to [2001:db8::1]:443, one vault holding every
# rule (the unkind shape: one scope, one nft set), no ipset receiver; sizes
# 10k and 100k by default (at most ~150k: sites own distinct /48s). Rules are
# 70% /128 hosts and 20% /64 subnets in 2001:db8:0000-7fff::/33, 10% sites
# (/48, /52, /56, /60) in 2001:db8:8000-ffff::/33, each host or subnet in a
# /64 and each site in a /48 of its own (no rule nests in another, so nft's
# auto-merge keeps them all), and every rule's third group even. Two traffic
# shapes, every packet denied by every filter as above: "spread", sources
# random over both halves with an odd third group (every lookup walks the
# whole structure; vaultwall probes every prefix length in use), and "hot",
# every packet from 2001:db8:1::1.
#
# Addresses: SPEC section 6 only. Namespaces vwbw-* are created here and
# removed on every exit path.
set -euo pipefail

. "$(dirname "$(readlink -f "$0")")/common.sh"
P=vwbw
VAULTS=16
QUICK=0
FAMILY=4
SIZES=""
REPEATS=""
PACKETS=""
while [ $# -gt 0 ]; do
  case $1 in
    --quick) QUICK=1 ;;
    --ipv6) FAMILY=6 ;;
    --sizes) SIZES=$2; shift ;;
    --repeats) REPEATS=$2; shift ;;
    --packets) PACKETS=$2; shift ;;
    -h|--help) print_help "$0"; exit 0 ;;
    *) echo "wire.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
FULL_SIZES=10000,100000,1000000
VARIANTS=(floor vaultwall nft ipset none)
SHAPES=(spread)
if [ "$FAMILY" = 6 ]; then
  VAULTS=1; FULL_SIZES=10000,100000
  VARIANTS=(floor vaultwall nft none)
  SHAPES=(spread hot)
fi
if [ "$QUICK" = 1 ]; then
  SIZES=${SIZES:-10000}; REPEATS=${REPEATS:-3}; PACKETS=${PACKETS:-200000}
else
  SIZES=${SIZES:-$FULL_SIZES}; REPEATS=${REPEATS:-3}; PACKETS=${PACKETS:-500000}
fi
IFS=, read -r -a SIZE_LIST <<<"$SIZES"

die() { echo "wire.sh: $*" >&2; exit 1; }
require_root "namespaces, XDP, nftables"
require_tools trafgen nft clang nsenter jq awk
[ "$FAMILY" = 6 ] || require_tools ipset iptables
require_binaries vaultwall-loader vaultwalld vaultwallctl
# iptables: the legacy raw table if this kernel has it (the XDP paper's
# baseline), else iptables-nft.
IPT=iptables
if command -v iptables-legacy >/dev/null && iptables-legacy -t raw -S >/dev/null 2>&1; then IPT=iptables-legacy; fi

WORK=$(mktemp -d /tmp/vw-wire.XXXXXX)
PIN=/sys/fs/bpf/$P-$$
DAEMON_PID=""
cleanup() {
  set +e
  [ -n "$DAEMON_PID" ] && kill "$DAEMON_PID" 2>/dev/null && wait "$DAEMON_PID" 2>/dev/null
  local v
  for v in tx "${VARIANTS[@]}"; do
    ip netns pids "$P-$v" 2>/dev/null | xargs -r kill -9 2>/dev/null
    ip netns del "$P-$v" 2>/dev/null
  done
  rm -rf "$PIN" "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ns() { local n=$1; shift; ip netns exec "$P-$n" "$@"; }
ns_bpf() { local n=$1; shift; nsenter --net="/run/netns/$P-$n" "$@"; }
ctl() { "$BIN/vaultwallctl" --socket "$WORK/ctl.sock" --pin-dir "$PIN" "$@"; }

# ------------------------------------------------------------------ topology
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
for v in tx "${VARIANTS[@]}"; do ip netns del "$P-$v" 2>/dev/null || true; done
ip netns add "$P-tx"
ns tx ip link set lo up
# The sender's end of the pair to receiver V is "to-V" (IFNAMSIZ: short names).
for v in "${VARIANTS[@]}"; do
  ip netns add "$P-$v"
  ns "$v" ip link set lo up
  ip link add "$P-tx$$" type veth peer name "$P-rx$$"
  ip link set "$P-tx$$" netns "$P-tx"
  ip link set "$P-rx$$" netns "$P-$v"
  ns tx ip link set "$P-tx$$" name "to-$v"
  ns "$v" ip link set "$P-rx$$" name eth0
  ns "$v" ip link set eth0 up
  ns "$v" ip addr add 198.18.0.1/32 dev eth0   # no route anywhere: nothing leaves
  ns tx ip link set "to-$v" up
done

# The floor: XDP_DROP and nothing else.
cat > "$WORK/drop.c" <<'EOF'
#include <linux/bpf.h>
__attribute__((section("xdp"), used)) int xdp_drop_all(struct xdp_md *ctx) { return XDP_DROP; }
char _license[] __attribute__((section("license"), used)) = "GPL";
EOF
clang -O2 -g -target bpf -I"/usr/include/$(gcc -print-multiarch)" -c "$WORK/drop.c" -o "$WORK/drop.o"
ns floor ip link set dev eth0 xdpdrv obj "$WORK/drop.o" sec xdp

# vaultwall: attached once with room for every rule set: a reload needs ids
# for the live rules and the new ones together (docs/operators-guide.md).
total=0
for n in "${SIZE_LIST[@]}"; do total=$((total + n)); done
ns_bpf vaultwall "$BIN/vaultwall-loader" attach --dev eth0 --mode native --pin-dir "$PIN" \
  --max-rules $((total + 4096)) >"$WORK/loader.log"

# The packets: SYNs to 203.0.113.1..16:443 from random odd-third-octet
# sources in 198.18.0.0/15 (random ports and sequence numbers too); IPv6: see
# the header.
pkt_cfg() {  # pkt_cfg DST_MAC SHAPE
  if [ "$FAMILY" = 4 ]; then
    cat <<EOF
{ eth(da=$1, type=0x0800),
  ipv4(sa=198.18.1.1, sa[1]=drnd(18,19), sa[2]=dinc(1,255,2), sa[3]=drnd(),
       da=203.0.113.1, da[3]=drnd(1,$VAULTS), ttl=64),
  tcp(sp=drnd(), dp=443, syn, seq=drnd()) }
EOF
  elif [ "$2" = spread ]; then
    cat <<EOF
{ eth(da=$1, type=0x86dd),
  ipv6(sa=2001:db8:1::1, sa[4]=drnd(), sa[5]=dinc(1,255,2), sa[6]=drnd(), sa[7]=drnd(),
       sa[8]=drnd(), sa[9]=drnd(), sa[10]=drnd(), sa[11]=drnd(), sa[12]=drnd(),
       sa[13]=drnd(), sa[14]=drnd(), sa[15]=drnd(), da=2001:db8::1, hl=64),
  tcp(sp=drnd(), dp=443, syn, seq=drnd()) }
EOF
  else
    cat <<EOF
{ eth(da=$1, type=0x86dd),
  ipv6(sa=2001:db8:1::1, da=2001:db8::1, hl=64),
  tcp(sp=drnd(), dp=443, syn, seq=drnd()) }
EOF
  fi
}
for v in "${VARIANTS[@]}"; do
  for shape in "${SHAPES[@]}"; do
    pkt_cfg "$(ns "$v" ip -j link show eth0 | jq -r '.[0].address')" "$shape" > "$WORK/pkt-$v-$shape.cfg"
  done
done

# ------------------------------------------------------------------- rules
gen_rules() { if [ "$FAMILY" = 6 ]; then gen_rules6 "$@"; else gen_rules4 "$@"; fi; }

gen_rules4() {  # gen_rules4 N > file: "VAULT PREFIX" lines, vault-major
  awk -v n="$1" -v vaults=$VAULTS -v seed=6 'BEGIN {
    srand(seed); per = int(n / vaults)
    for (v = 1; v <= vaults; v++) {
      want = per + (v <= n - per * vaults ? 1 : 0); got = 0
      while (got < want) {
        len = (rand() < 0.7) ? 32 : 24 + int(rand() * 8)
        b = 18 + int(rand() * 2); c = 2 * int(rand() * 128); d = int(rand() * 256)
        if (len < 32) { size = 2 ^ (32 - len); d = d - d % size }
        k = v " " b "." c "." d "/" len
        if (!(k in seen)) { seen[k] = 1; print v, "198." b "." c "." d "/" len; got++ }
      }
    }
  }'
}

gen_rules6() {  # gen_rules6 N > file: "1 PREFIX" lines (one vault; see the header)
  awk -v n="$1" -v seed=6 'BEGIN {
    srand(seed)
    if (n * 0.1 > 0.9 * 16384) { print "wire.sh: too many IPv6 rules for the address plan" > "/dev/stderr"; exit 1 }
    for (got = 0; got < n;) {
      p = rand(); hi = int(rand() * 128); lo = 2 * int(rand() * 128); g4 = int(rand() * 65536)
      if (p < 0.9) {  # a host or a subnet, alone in its /64 of 2001:db8:0000-7fff::/33
        g3 = hi * 256 + lo; k = g3 ":" g4
        if (k in seen) continue
        seen[k] = 1
        if (p < 0.7) printf "1 2001:db8:%x:%x:%x:%x:%x:%x/128\n", g3, g4, int(rand() * 65536), int(rand() * 65536), int(rand() * 65536), int(rand() * 65536)
        else printf "1 2001:db8:%x:%x::/64\n", g3, g4
      } else {        # a site, alone in its /48 of 2001:db8:8000-ffff::/33
        g3 = (128 + hi) * 256 + lo
        if (g3 in seen) continue
        seen[g3] = 1; len = 48 + 4 * int(rand() * 4); m = 2 ^ (64 - len); g4 -= g4 % m
        if (len == 48) printf "1 2001:db8:%x::/48\n", g3
        else printf "1 2001:db8:%x:%x::/%d\n", g3, g4, len
      }
      got++
    }
  }'
}

# The vault's endpoint: 203.0.113.V:443 or [2001:db8::V]:443 (V in hex).
EP_FMT='203.0.113.%d'; EP_YAML='[203.0.113.%d:443]'
[ "$FAMILY" = 6 ] && { EP_FMT='2001:db8::%x'; EP_YAML='["[2001:db8::%x]:443"]'; }

rules_yaml() {  # rules_yaml RULES > yaml
  awk -v vaults=$VAULTS -v ep="$EP_YAML" 'function head(v) {
      printf "  - name: bench-%d\n    tenant_id: 3f1c9a52-7d0e-4b8a-9c11-5e2f0a6d4b10\n", v
      printf "    subscription_id: 0b1f6471-1bf0-4dda-aec3-cb9272f09590\n    location: bench\n"
      printf "    upstream: http://127.0.0.1:8200\n    endpoints: " ep "\n", v
      printf "    public_network_access: enabled\n    network_acls:\n      default_action: deny\n"
      printf "      bypass: none\n      ip_rules:\n"
    }
    BEGIN { print "version: 1\nvaults:"; cur = 0 }
    { while (cur < $1) head(++cur); print "        - " $2 }
    END { while (cur < vaults) { head(++cur); print "        - 192.0.2.1/32" } }' "$1"
}

nft_file() {  # nft_file RULES > nft script (auto-merge: a vault's prefixes may nest)
  local fam=ip; [ "$FAMILY" = 6 ] && fam=ip6
  awk -v vaults=$VAULTS -v fam=$fam -v ep="$EP_FMT" 'BEGIN {
      type = (fam == "ip6") ? "ipv6_addr" : "ipv4_addr"
      print "table netdev vwb {"
      for (v = 1; v <= vaults; v++) print "  set v" v " { type " type "; flags interval; auto-merge; }"
      for (v = 1; v <= vaults; v++) print "  chain v" v " { " fam " saddr != @v" v " drop; }"
      printf "  chain in { type filter hook ingress device eth0 priority 0; policy accept;\n"
      printf "    " fam " daddr vmap {"
      for (v = 1; v <= vaults; v++) printf "%s " ep " : jump v%d", (v > 1 ? "," : ""), v, v
      print " };\n  }\n}"
    }
    { if ($1 != cur || cnt == 20000) { if (cnt) print " }"; printf "add element netdev vwb v%d {", $1; cur = $1; cnt = 0 }
      printf "%s%s", (cnt ? ", " : " "), $2; cnt++ }
    END { if (cnt) print " }" }' "$1"
}

ipset_file() {  # ipset_file RULES > ipset restore script: one hash:net set per vault
  awk 'NR == FNR { c[$1]++; next }
    $1 != cur { cur = $1; hs = 1024; while (hs < c[cur]) hs *= 2
      printf "create vwb%d hash:net family inet hashsize %d maxelem %d\n", cur, hs, 2 * c[cur] + 1024 }
    { print "add vwb" $1, $2 }' "$1" "$1"
}

install_size() {  # install_size N: (re)configures vaultwall, nft and ipset with N rules
  local n=$1 t0
  gen_rules "$n" > "$WORK/rules.txt"

  t0=$(date +%s.%N)
  rules_yaml "$WORK/rules.txt" > "$WORK/rules.yaml"
  if [ -z "$DAEMON_PID" ]; then
    ns_bpf vaultwall "$BIN/vaultwalld" --config "$WORK/rules.yaml" --pin-dir "$PIN" \
      --socket "$WORK/ctl.sock" --no-gate >"$WORK/vaultwalld.log" 2>&1 &
    DAEMON_PID=$!
    local i
    for ((i = 0; i < 1800; i++)); do
      ctl status >/dev/null 2>&1 && break
      kill -0 "$DAEMON_PID" 2>/dev/null || { cat "$WORK/vaultwalld.log" >&2; die "vaultwalld exited"; }
      sleep 0.2
    done
    ctl status >/dev/null 2>&1 || die "vaultwalld did not come up in 360 s"
  else
    ctl reload >/dev/null || { tail -5 "$WORK/vaultwalld.log" >&2; die "vaultwalld reload failed"; }
  fi
  printf '  vaultwall: %s ip_rules (YAML written and loaded by vaultwalld) in %.1f s\n' "$n" \
    "$(echo "$(date +%s.%N) - $t0" | bc)"

  t0=$(date +%s.%N)
  nft_file "$WORK/rules.txt" > "$WORK/rules.nft"
  ns nft nft flush ruleset
  ns nft nft -f "$WORK/rules.nft" 2>"$WORK/nft.err" || { cut -c1-200 "$WORK/nft.err" | head -5 >&2; die "nft -f failed at $n rules"; }
  printf '  nftables:  %s set elements after auto-merge, loaded in %.1f s\n' \
    "$(ns nft nft -j list sets netdev | jq '[.nftables[].set.elem // [] | length] | add')" \
    "$(echo "$(date +%s.%N) - $t0" | bc)"

  [ "$FAMILY" = 6 ] && return 0
  t0=$(date +%s.%N)
  ns ipset "$IPT" -t raw -F PREROUTING
  ns ipset ipset destroy 2>/dev/null || true
  ipset_file "$WORK/rules.txt" | ns ipset ipset restore || die "ipset restore failed at $n rules"
  local v
  for ((v = 1; v <= VAULTS; v++)); do
    ns ipset "$IPT" -t raw -A PREROUTING -d 203.0.113.$v/32 -p tcp --dport 443 \
      -m set ! --match-set vwb$v src -j DROP
  done
  printf '  ipset:     %s entries in %d hash:net sets (%s raw PREROUTING), loaded in %.1f s\n' \
    "$(ns ipset ipset list -t | awk '/Number of entries/ {s += $4} END {print s}')" "$VAULTS" "$IPT" \
    "$(echo "$(date +%s.%N) - $t0" | bc)"
}

# --------------------------------------------------------------- measuring
softirq_ticks() { awk '/^cpu / {print $8}' /proc/stat; }
HZ=$(getconf CLK_TCK)

measure() {  # measure VARIANT SHAPE -> "ns_per_packet kpps"
  local v=$1 a b t0 t1 try
  # trafgen's TX ring flush can fail with EAGAIN on a loaded machine: the run
  # is thrown away and repeated (at most three times), never half-counted.
  for try in 1 2 3; do
    a=$(softirq_ticks); t0=$(date +%s%N)
    if ns tx timeout 300 trafgen -o "to-$v" -i "$WORK/pkt-$v-$2.cfg" -n "$PACKETS" -P 1 -E 7 \
         >"$WORK/trafgen.log" 2>&1; then
      break
    fi
    [ "$try" -lt 3 ] || { cat "$WORK/trafgen.log" >&2; die "trafgen failed three times"; }
    sleep 1
  done
  t1=$(date +%s%N); b=$(softirq_ticks)
  awk -v d=$((b - a)) -v hz="$HZ" -v p="$PACKETS" -v ns=$((t1 - t0)) \
    'BEGIN { printf "%.1f %.0f\n", d * 1e9 / hz / p, p / (ns / 1e9) / 1e3 }'
}

# vaultwall's drop.no_rule packets over all vaults
vw_drops() { ctl stats --json | jq '[.vaults[]?.drop.no_rule.packets // 0] | add // 0'; }

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR] = $1} END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

echo "wire: receiver softirq ns/packet (/proc/stat softirq, all CPUs, USER_HZ=$HZ), $PACKETS packets a run,"
echo "      median of $REPEATS interleaved runs; traffic: SYNs denied by every filter (see the header)"
echo "      nproc $(nproc), load $(cut -d' ' -f1-3 /proc/loadavg)"
declare -A RES
sent=$((PACKETS * REPEATS))
for n in "${SIZE_LIST[@]}"; do
  echo "== $n rules"
  install_size "$n"
  declare -A runs=()
  drops0=$(vw_drops)
  for ((r = 0; r < REPEATS; r++)); do
    for shape in "${SHAPES[@]}"; do
      # rotate the order every repeat
      for ((k = 0; k < ${#VARIANTS[@]}; k++)); do
        v=${VARIANTS[$(((k + r) % ${#VARIANTS[@]}))]}
        read -r nspp kpps < <(measure "$v" "$shape")
        runs[$shape-$v]="${runs[$shape-$v]:-} $nspp"
        runs[$shape-$v-kpps]="${runs[$shape-$v-kpps]:-} $kpps"
      done
    done
  done
  drops=$(($(vw_drops) - drops0))
  for shape in "${SHAPES[@]}"; do
    for v in "${VARIANTS[@]}"; do
      RES[$n-$shape-$v]=$(median <<<"${runs[$shape-$v]}")
      printf '  %-6s %-9s %8.1f ns/pkt  (sender %5.0f kpps; runs:%s)\n' "$shape" "$v" "${RES[$n-$shape-$v]}" \
        "$(median <<<"${runs[$shape-$v-kpps]}")" "${runs[$shape-$v]}"
    done
  done
  echo "  check: vaultwall counted $drops drop.no_rule packets of $((sent * ${#SHAPES[@]})) sent to it"
  [ "$drops" -eq $((sent * ${#SHAPES[@]})) ] || echo "  WARNING: vaultwall did not deny every packet as no_rule"
  unset runs
done

# The cost each receiver adds over the floor, and vaultwall's as a fraction
# of nft's (and ipset's): "n/a" when the other adds nothing measurable.
ADDED=()
for v in "${VARIANTS[@]}"; do [ "$v" = floor ] || ADDED+=("$v"); done
PEERS=(nft); [[ " ${VARIANTS[*]} " == *" ipset "* ]] && PEERS+=(ipset)
echo
echo "wire summary, IPv$FAMILY (median ns/packet of receiver softirq; v+ = v minus the XDP_DROP floor)"
printf '%9s %-6s %8s' rules shape floor
for v in "${ADDED[@]}"; do printf ' %10s' "$v+"; done
for p in "${PEERS[@]}"; do printf '   %-17s' "vaultwall+/$p+"; done
printf '   %s\n' "vaultwall/nft"
for n in "${SIZE_LIST[@]}"; do
  for shape in "${SHAPES[@]}"; do
    f=${RES[$n-$shape-floor]}
    w=${RES[$n-$shape-vaultwall]}
    printf '%9d %-6s %8.1f' "$n" "$shape" "$f"
    for v in "${ADDED[@]}"; do awk -v x="${RES[$n-$shape-$v]}" -v f="$f" 'BEGIN { printf " %10.1f", x - f }'; done
    for p in "${PEERS[@]}"; do
      awk -v w="$w" -v t="${RES[$n-$shape-$p]}" -v f="$f" \
        'BEGIN { printf "   %-17s", (t - f > 0) ? sprintf("%.2f", (w - f) / (t - f)) : "n/a" }'
    done
    awk -v w="$w" -v t="${RES[$n-$shape-nft]}" 'BEGIN { printf "   %.2f", w / t }'
    [ "$FAMILY" = 4 ] && printf '   (target <= 0.20)'
    echo
  done
done
