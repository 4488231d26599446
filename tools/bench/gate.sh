#!/usr/bin/env bash
# gate.sh: the L7 gate against its peers (issue 6). In two namespaces of its
# own (a client and the vault host, one veth pair, no route out):
#
#   upstream  wrk -> http://198.18.0.1:8200          vaultwall-labvault, plain HTTP
#   gate      wrk -> https://203.0.113.1:443         vaultwalld's gate (XDP attached on the host's eth0)
#   nginx     wrk -> https://203.0.113.2:443         nginx TLS reverse proxy, keep-alive to the same upstream
#
# wrk: keep-alive, TLS (but upstream), a small GET of one secret with a bearer
# token; requests/s and p50/p99 latency, medians over repeats, the targets
# interleaved. The gate runs twice: with one valid token reused (every request
# after the first is a verified-token cache hit), and with a token whose
# signature is wrong (never cached: every request pays a full RS256
# verification and is answered 401). --full adds the same at 256 connections,
# and a run with a new TLS connection per request (wrk's "Connection: close":
# handshake-bound). Then the gate's RSS with N idle TLS connections (a python3
# client holds them; skipped without python3).
#
#   tools/bench/gate.sh [--quick|--full] [--duration S] [--repeats N] [--idle N]
#
# VW_GATE_PROFILE=FILE: perf record (call graphs) of the gate during its first
# keep-alive run, written to FILE (perf itself slows that run).
set -euo pipefail

. "$(dirname "$(readlink -f "$0")")/common.sh"
P=vwbg
QUICK=0
FULL=0
DURATION=""; REPEATS=""; IDLE=""
while [ $# -gt 0 ]; do
  case $1 in
    --quick) QUICK=1 ;;
    --full) FULL=1 ;;
    --duration) DURATION=$2; shift ;;
    --repeats) REPEATS=$2; shift ;;
    --idle) IDLE=$2; shift ;;
    -h|--help) print_help "$0"; exit 0 ;;
    *) echo "gate.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
if [ "$QUICK" = 1 ]; then
  DURATION=${DURATION:-3}; REPEATS=${REPEATS:-1}; IDLE=${IDLE:-1000}
else
  DURATION=${DURATION:-10}; REPEATS=${REPEATS:-3}; IDLE=${IDLE:-10000}
fi

die() { echo "gate.sh: $*" >&2; [ -n "${WORK:-}" ] && tail -n 5 "$WORK"/*.log >&2 2>/dev/null; exit 1; }
require_root "namespaces, XDP"
require_tools wrk nginx openssl curl jq nsenter
require_binaries vaultwall-loader vaultwalld vaultwallctl vaultwall-labvault

WORK=$(mktemp -d /tmp/vw-gate.XXXXXX)
chmod 755 "$WORK"
PIN=/sys/fs/bpf/$P-$$
PIDS=()
cleanup() {
  set +e
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done 2>/dev/null
  [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null
  for p in h c; do
    ip netns pids "$P-$p" 2>/dev/null | xargs -r kill -9 2>/dev/null
    ip netns del "$P-$p" 2>/dev/null
  done
  rm -rf "$PIN" "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ns() { local n=$1; shift; ip netns exec "$P-$n" "$@"; }
ns_bpf() { local n=$1; shift; nsenter --net="/run/netns/$P-$n" "$@"; }
bg() { "$@" & PIDS+=($!); }
wait_for() {  # wait_for WHAT SECONDS CMD...
  local what=$1 secs=$2 i; shift 2
  for ((i = 0; i < secs * 10; i++)); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  tail -20 "$WORK"/*.log >&2 2>/dev/null
  die "$what did not come up in ${secs}s"
}

# ------------------------------------------------------------------ topology
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
ip netns del "$P-h" 2>/dev/null || true; ip netns del "$P-c" 2>/dev/null || true
ip netns add "$P-h"; ip netns add "$P-c"
ns h ip link set lo up; ns c ip link set lo up
ip link add "$P-h$$" type veth peer name "$P-c$$"
ip link set "$P-h$$" netns "$P-h"; ip link set "$P-c$$" netns "$P-c"
ns h ip link set "$P-h$$" name eth0; ns c ip link set "$P-c$$" name eth0
ns h ip link set eth0 up; ns c ip link set eth0 up
ns h ip addr add 198.18.0.1/24 dev eth0
ns h ip addr add 203.0.113.1/32 dev eth0
ns h ip addr add 203.0.113.2/32 dev eth0
ns h ip route add 192.0.2.0/24 dev eth0
ns c ip addr add 192.0.2.10/24 dev eth0
ns c ip route add 203.0.113.0/24 dev eth0
ns c ip route add 198.18.0.0/24 dev eth0

# ------------------------------------------------------------ PKI and token
# The lab's PKI and token tool (tools/labvault/lab_pki.cpp); the rules below
# give the "app" identity's oid its access policy.
D=$WORK/pki
"$BIN/vaultwall-labvault" pki --dir "$D" --days 2 --san DNS:bench.vault.lab --san IP:203.0.113.1 --san IP:203.0.113.2
TENANT=3f1c9a52-7d0e-4b8a-9c11-5e2f0a6d4b10
ISSUER=https://sts.lab.test/$TENANT/
OID=6b0c8d8e-0000-4000-8000-000000000001
mint_token() { "$BIN/vaultwall-labvault" mint --key "$D/issuer.key" --id app --ttl 7200; }
TOKEN=$(mint_token)
# Same header and payload, a signature that does not verify (its first
# character changed): never cached, so every request is verified in full.
BAD_TOKEN=$(awk -F. '{ c = substr($3, 1, 1); printf "%s.%s.%s%s\n", $1, $2, (c == "A" ? "B" : "A"), substr($3, 2) }' <<<"$TOKEN")

# ----------------------------------------------------------------- services
mkdir -p "$WORK/vault-data"
bg ns_bpf h "$BIN/vaultwall-labvault" --listen 198.18.0.1:8200 --data "$WORK/vault-data" >"$WORK/labvault.log" 2>&1
cat > "$WORK/rules.yaml" <<EOF
version: 1
identity:
  audience: https://vault.azure.net
  authority: https://login.microsoftonline.com
  issuers:
    - issuer: $ISSUER
      jwks_file: pki/jwks.json
gate:
  tls_cert: pki/vault.pem
  tls_key: pki/vault.key
  audit_log: audit.jsonl
vaults:
  - name: bench-1
    tenant_id: $TENANT
    subscription_id: 0b1f6471-1bf0-4dda-aec3-cb9272f09590
    location: bench
    endpoints: [203.0.113.1:443]
    upstream: http://198.18.0.1:8200
    public_network_access: enabled
    network_acls:
      default_action: deny
      bypass: none
      ip_rules: [192.0.2.0/24]
    authorization: access_policies
    access_policies:
      - object_id: $OID
        permissions: { secrets: [get, list, set] }
EOF
ns_bpf h "$BIN/vaultwall-loader" attach --dev eth0 --mode native --pin-dir "$PIN" >"$WORK/loader.log"
bg ns_bpf h "$BIN/vaultwalld" --config "$WORK/rules.yaml" --pin-dir "$PIN" --socket "$WORK/ctl.sock" \
  --log-level warn >"$WORK/vaultwalld.log" 2>&1
GATE_PID=${PIDS[-1]}

cat > "$WORK/nginx.conf" <<EOF
worker_processes auto;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  upstream vault { server 198.18.0.1:8200; keepalive 64; }
  server {
    listen 203.0.113.2:443 ssl;
    ssl_certificate $D/vault.pem;
    ssl_certificate_key $D/vault.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    keepalive_requests 1000000;
    location / {
      proxy_pass http://vault;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$host;
    }
  }
}
EOF
ns h nginx -c "$WORK/nginx.conf" -e "$WORK/nginx-error.log"

wait_for "the lab vault" 20 ns c bash -c 'exec 3<>/dev/tcp/198.18.0.1/8200'
wait_for "the gate" 30 ns c bash -c 'exec 3<>/dev/tcp/203.0.113.1/443'
wait_for "nginx" 20 ns c bash -c 'exec 3<>/dev/tcp/203.0.113.2/443'

Q='?api-version=7.4'
PATH_=/secrets/bench-secret$Q
code=$(ns c curl -sS -o "$WORK/put.log" -w '%{http_code}' --max-time 5 --cacert "$D/ca.pem" \
  --resolve "bench.vault.lab:443:203.0.113.1" -X PUT -H "Authorization: Bearer $TOKEN" \
  -H 'Content-Type: application/json' --data '{"value":"0123456789abcdef"}' "https://bench.vault.lab$PATH_") || true
[ "$code" = 200 ] || { tail -5 "$WORK/vaultwalld.log" >&2; die "PUT through the gate answered $code"; }
for t in "https://203.0.113.1$PATH_" "https://203.0.113.2$PATH_" "http://198.18.0.1:8200$PATH_"; do
  code=$(ns c curl -sS -k -o /dev/null -w '%{http_code}' --max-time 5 -H "Authorization: Bearer $TOKEN" "$t") || true
  [ "$code" = 200 ] || die "GET $t answered $code"
done
code=$(ns c curl -sS -k -o /dev/null -w '%{http_code}' --max-time 5 -H "Authorization: Bearer $BAD_TOKEN" "https://203.0.113.1$PATH_") || true
[ "$code" = 401 ] || die "the bad token got $code, not 401"

# --------------------------------------------------------------------- wrk
to_ms() {  # wrk latency "1.23ms" / "850.00us" / "1.02s" -> ms
  awk '{ v = $1; if (v ~ /us$/) { sub(/us$/, "", v); v /= 1000 } else if (v ~ /ms$/) { sub(/ms$/, "", v) }
         else if (v ~ /s$/) { sub(/s$/, "", v); v *= 1000 } printf "%.3f\n", v }'
}
run_wrk() {  # run_wrk CONNS URL TOKEN [HEADER] -> "rps p50ms p99ms non2xx"
  local out extra=()
  [ -n "${4:-}" ] && extra=(-H "$4")
  out=$(ns c timeout $((DURATION + 30)) wrk -t1 -c"$1" -d"${DURATION}s" --latency \
    -H "Host: bench.vault.lab" -H "Authorization: Bearer $3" "${extra[@]}" "$2" 2>&1) || { echo "$out" >&2; die "wrk $2 failed"; }
  local rps p50 p99 bad
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  p50=$(awk '$1 == "50%" {print $2}' <<<"$out" | to_ms)
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out" | to_ms)
  bad=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' <<<"$out")
  echo "$rps $p50 $p99 ${bad:-0}"
}
gate_pid() { pgrep -P "$GATE_PID" -x vaultwalld || echo "$GATE_PID"; }  # nsenter may or may not fork
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR] = $1} END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

declare -A URL=([upstream]="http://198.18.0.1:8200$PATH_" [gate]="https://203.0.113.1$PATH_"
                [gate-nocache]="https://203.0.113.1$PATH_" [nginx]="https://203.0.113.2$PATH_")
declare -A TOK=([upstream]=$TOKEN [gate]=$TOKEN [gate-nocache]=$BAD_TOKEN [nginx]=$TOKEN)
# series CONNS HEADER LABEL TARGET...: the targets interleaved, REPEATS times;
# prints the medians and the gate's ratios to its peers.
series() {
  local conns=$1 header=$2 label=$3 r k t m rps p50 p99 bad; shift 3
  local targets=("$@")
  declare -A R=()
  echo "gate: $label: wrk -t1 -c$conns -d${DURATION}s --latency${header:+ -H '$header'}, GET $PATH_, median of $REPEATS,"
  echo "      nproc $(nproc), load $(cut -d' ' -f1-3 /proc/loadavg); nginx worker_processes auto"
  for ((r = 0; r < REPEATS; r++)); do
    for ((k = 0; k < ${#targets[@]}; k++)); do
      t=${targets[$(((k + r) % ${#targets[@]}))]}
      if [ "$t" = gate ] && [ -n "${VW_GATE_PROFILE:-}" ] && [ ! -e "$VW_GATE_PROFILE" ]; then
        perf record -q -g -o "$VW_GATE_PROFILE" -p "$(gate_pid)" -- sleep "$DURATION" \
          >/dev/null 2>&1 &
      fi
      read -r rps p50 p99 bad < <(run_wrk "$conns" "${URL[$t]}" "${TOK[$t]}" "$header")
      R[$t-rps]="${R[$t-rps]:-} $rps"; R[$t-p50]="${R[$t-p50]:-} $p50"; R[$t-p99]="${R[$t-p99]:-} $p99"
      R[$t-bad]="${R[$t-bad]:-} $bad"
    done
  done
  for t in "${targets[@]}"; do
    for m in rps p50 p99; do R[$t-$m]=$(median <<<"${R[$t-$m]}"); done
    printf '  %-13s %9.0f req/s   p50 %7.3f ms   p99 %7.3f ms   non-2xx per run:%s\n' "$t" \
      "${R[$t-rps]}" "${R[$t-p50]}" "${R[$t-p99]}" "${R[$t-bad]}"
  done
  [[ " ${targets[*]} " == *" gate-nocache "* ]] &&
    echo "  (gate-nocache: a token whose signature fails, so never cached: full RS256 verify + 401 each request)"
  awk -v g="${R[gate-rps]}" -v n="${R[nginx-rps]}" 'BEGIN { printf "  gate/nginx requests/s: %.2f (target >= 1)\n", g / n }'
  if [ -n "${R[upstream-p99]:-}" ]; then
    awk -v g99="${R[gate-p99]}" -v u99="${R[upstream-p99]}" -v n99="${R[nginx-p99]}" 'BEGIN {
      printf "  p99 added over the upstream: gate %.3f ms, nginx %.3f ms (target: gate < 1 ms)\n", g99 - u99, n99 - u99 }'
  fi
}

series 16 "" "keep-alive, 16 connections" upstream gate gate-nocache nginx
if [ "$FULL" = 1 ]; then
  series 256 "" "keep-alive, 256 connections" upstream gate gate-nocache nginx
  series 16 "Connection: close" "a new TLS connection per request (handshake-bound)" gate nginx
fi

# ------------------------------------------------------- idle connections
if command -v python3 >/dev/null; then
  cat > "$WORK/idle.py" <<'EOF'
import socket, ssl, sys, time
n, host, port, ready = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
conns, failed = [], 0
for i in range(n):
    try:
        s = socket.create_connection((host, port), timeout=10)
        conns.append(ctx.wrap_socket(s, server_hostname="bench.vault.lab"))
    except Exception:
        failed += 1
open(ready, "w").write("%d %d\n" % (len(conns), failed))
time.sleep(120)
EOF
  rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
  gate_pid=$(gate_pid)
  [ "$(cat "/proc/$gate_pid/comm" 2>/dev/null)" = vaultwalld ] || gate_pid=$(ns h pgrep -x vaultwalld | head -1)
  sleep 2   # wrk's connections close
  before=$(rss_kib "$gate_pid")
  hard=$(ulimit -Hn)
  if [ "$hard" != unlimited ] && [ "$IDLE" -gt $((hard - 64)) ]; then
    echo "  (open-file hard limit $hard: holding $((hard - 64)) idle connections, not $IDLE)"
    IDLE=$((hard - 64))
  fi
  (ulimit -n "$hard" || true; exec ip netns exec "$P-c" python3 "$WORK/idle.py" "$IDLE" 203.0.113.1 443 "$WORK/idle.ready") &
  PIDS+=($!)
  i=0
  while [ ! -s "$WORK/idle.ready" ] && [ $((i++)) -lt 1200 ]; do sleep 0.5; done
  [ -s "$WORK/idle.ready" ] || die "the idle client did not finish connecting in 600 s"
  read -r held failed <"$WORK/idle.ready"
  sleep 2
  after=$(rss_kib "$gate_pid")
  awk -v b="$before" -v a="$after" -v n="$held" -v f="$failed" 'BEGIN {
    printf "  idle TLS connections: %d held (%d failed); gate RSS %.1f MiB -> %.1f MiB: %.1f KiB per connection (target <= 16)\n",
      n, f, b / 1024, a / 1024, (n > 0 ? (a - b) / n : 0) }'
else
  echo "  idle TLS connections: skipped (no python3 for the idle client)"
fi
