#!/usr/bin/env bash
# porthole benchmark suite: raw routing vs porthole vs OpenVPN (TCP/443) [vs ocserv/openconnect]
# in the four-namespace lab (LAB_PREFIX=bench_). Prints a markdown report and writes it to --out.
#
#   sudo scripts/bench/run.sh [--runs 3] [--seconds 10] [--only raw,porthole,openvpn[,ocserv]]
#                             [--out FILE.md] [--no-build]
#
# Per scenario: time from starting the client to the first packet through the tunnel (--runs
# times, median), idle ping RTT (20 x 50 ms), then iperf3 to/from opnet (198.18.3.2): 1 flow up,
# 1 flow down (-R), 4 flows up, 4 flows down, each --runs times for --seconds (median Gbit/s),
# with the tunnel client's and server's CPU time (utime+stime from /proc/PID/stat) per GB moved.
# scenarios:
#   raw       `lab.sh open`: the firewall forwards everything, ue routes straight to opnet
#   porthole  portholed in conc (--nat-egress conc-op), porthole in ue; firewall restrictive
#   openvpn   OpenVPN 2.6, proto tcp-server on 198.18.2.2:443, AES-256-GCM, TLS 1.3, userspace
#             data path (disable-dco), NAT by nft masquerade; firewall restrictive
#   ocserv    (opt-in) ocserv + openconnect, TCP/443 only (no DTLS); firewall restrictive
# Environment: BUILD_DIR (default build-bench), LAB_PREFIX (default bench_), PORTHOLED_ARGS
# (more portholed options, split on spaces, e.g. "--workers 1").
# Everything lives in the lab namespaces; all processes are killed by PID and the lab is removed
# on exit, also on failure or Ctrl-C; a watchdog bounds the whole run.
# shellcheck disable=SC2317 # scenario functions are called indirectly ("${sc}_client")
set -uo pipefail

BENCH_NAME=bench
# shellcheck source=scripts/bench/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

RUNS=3
SECS=10
ONLY=raw,porthole,openvpn
OUT=""
BUILD=1
while (($#)); do
  case $1 in
    --runs) RUNS=${2:?--runs needs a number}; shift 2 ;;
    --seconds) SECS=${2:?--seconds needs a number}; shift 2 ;;
    --only) ONLY=${2:?--only needs a list}; shift 2 ;;
    --out) OUT=${2:?--out needs a file}; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    -h | --help) sed -n '2,20p' "$0"; exit 0 ;;
    *) b_die "unknown option '$1' (try --help)" ;;
  esac
done
if ! [[ $RUNS =~ ^[0-9]+$ ]] || ((RUNS < 1 || RUNS > 9)); then b_die "--runs must be 1..9"; fi
if ! [[ $SECS =~ ^[0-9]+$ ]] || ((SECS < 1 || SECS > 10)); then b_die "--seconds must be 1..10"; fi
IFS=, read -r -a SCENARIOS <<<"$ONLY"
for s in "${SCENARIOS[@]}"; do
  case $s in raw | porthole | openvpn | ocserv) ;; *) b_die "unknown scenario '$s' (raw, porthole, openvpn, ocserv)" ;; esac
done
OUT=${OUT:-$BUILD_DIR/bench-results.md}
LOG_KEEP=$BUILD_DIR/bench-logs

b_require_root
b_require_tools "${LAB_TOOLS[@]}" iperf3 jq cmake ninja getconf lscpu

has() { [[ ,$ONLY, == *",$1,"* ]]; }

# ---------------------------------------------------------------- prerequisites
apt_install() { # PKG...: install with apt-get, with a clear message
  b_log "installing $* with apt-get (needed for the comparison; skip it with --only)"
  DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y "$@" >"/tmp/bench-apt.$$.log" 2>&1
  local rc=$?
  ((rc == 0)) || tail -n 5 "/tmp/bench-apt.$$.log" >&2
  rm -f "/tmp/bench-apt.$$.log"
  return "$rc"
}
if has openvpn && ! command -v openvpn >/dev/null 2>&1; then
  apt_install openvpn || b_die "apt-get install -y openvpn failed; run without it: --only raw,porthole"
fi
OCSERV_NOTE=""
if has ocserv && ! { command -v ocserv >/dev/null && command -v openconnect >/dev/null && command -v ocpasswd >/dev/null; }; then
  apt_install ocserv openconnect || OCSERV_NOTE="skipped: apt-get install ocserv openconnect failed"
fi

if ((BUILD)); then b_build porthole portholed; fi
[[ -x $PORTHOLE_BIN && -x $PORTHOLED_BIN ]] || b_die "binaries not found: $PORTHOLE_BIN $PORTHOLED_BIN (drop --no-build)"

# Budget: per scenario 4 tests x runs x (seconds + overhead), connect runs, setup; plus lab.
BUDGET=$((${#SCENARIOS[@]} * (4 * RUNS * (SECS + 8) + RUNS * 25 + 90) + 120))
BENCH_WORK=$(mktemp -d /tmp/porthole-bench.XXXXXX)
b_install_traps
b_watchdog "$BUDGET"
b_log "runs=$RUNS seconds=$SECS scenarios=${SCENARIOS[*]} (bounded to $BUDGET s); work dir $BENCH_WORK"

LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
rm -rf "$LOG_KEEP"
b_lab_up
bash "$PKI_SH" "$PKI" >"$BENCH_WORK/pki.log" 2>&1 || { cat "$BENCH_WORK/pki.log" >&2; b_die "pki.sh failed"; }

# ---------------------------------------------------------------- results store
declare -A R   # R[scenario:key] = value
declare -A TUN_DEV=([porthole]=phbench0 [openvpn]=ovpnbench0 [ocserv]=ocsbench)
CLIENT_PID=""
SERVER_PID=""
IPERF_PORT=5201

# ---------------------------------------------------------------- scenario: porthole
porthole_server() {
  # shellcheck disable=SC2086 # PORTHOLED_ARGS holds separate words
  b_start "$NS_CONC" "$BENCH_WORK/portholed.log" "$PORTHOLED_BIN" --listen "$CONC_ADDR:443" \
    --cert "$PKI/server.pem" --key "$PKI/server.key" --client-ca "$PKI/ca.pem" \
    --pool 100.64.0.0/24 --nat-egress conc-op --tun-name phbench0 --log-level info \
    --control-socket "$BENCH_WORK/portholed.sock" ${PORTHOLED_ARGS:-}
  SERVER_PID=$B_PID
  b_wait_log "$BENCH_WORK/portholed.log" "listening on" 15 "$SERVER_PID" ||
    { tail -n 5 "$BENCH_WORK/portholed.log" >&2; b_die "portholed did not start"; }
}
porthole_client() {
  b_start "$NS_UE" "$BENCH_WORK/porthole-client.log" "$PORTHOLE_BIN" connect --server "$CONC_ADDR:443" \
    --ca "$PKI/ca.pem" --cert "$PKI/ue1.pem" --key "$PKI/ue1.key" --tun-name phbench0 --log-level info
  CLIENT_PID=$B_PID
}
porthole_ready() { b_wait_log "$BENCH_WORK/porthole-client.log" "tunnel up" 15 "$CLIENT_PID"; }
porthole_server_stop() { b_stop "$SERVER_PID" 5; SERVER_PID=""; }

# ---------------------------------------------------------------- scenario: openvpn
OVPN_DIR=""
openvpn_server() {
  OVPN_DIR=$BENCH_WORK/openvpn
  mkdir -p "$OVPN_DIR"
  cat >"$OVPN_DIR/server.conf" <<EOF
dev ovpnbench0
dev-type tun
proto tcp-server
local $CONC_ADDR
port 443
topology subnet
server 10.8.0.0 255.255.255.0
ca $PKI/ca.pem
cert $PKI/server.pem
key $PKI/server.key
dh none
data-ciphers AES-256-GCM
tls-version-min 1.3
disable-dco
verb 3
EOF
  cat >"$OVPN_DIR/client.conf" <<EOF
client
dev ovpnbench0
dev-type tun
proto tcp-client
remote $CONC_ADDR 443
nobind
ca $PKI/ca.pem
cert $PKI/ue1.pem
key $PKI/ue1.key
remote-cert-tls server
data-ciphers AES-256-GCM
tls-version-min 1.3
redirect-gateway def1
route $CONC_ADDR 255.255.255.255 net_gateway
disable-dco
verb 3
EOF
  nsx "$NS_CONC" nft -f - <<EOF || b_die "cannot install the NAT table in $NS_CONC"
table ip benchnat { }
delete table ip benchnat
table ip benchnat {
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "conc-op" ip saddr 10.8.0.0/24 masquerade
  }
}
EOF
  b_start "$NS_CONC" "$OVPN_DIR/server.log" openvpn --config "$OVPN_DIR/server.conf"
  SERVER_PID=$B_PID
  b_wait_log "$OVPN_DIR/server.log" "Initialization Sequence Completed" 15 "$SERVER_PID" ||
    { tail -n 5 "$OVPN_DIR/server.log" >&2; b_die "openvpn server did not start"; }
}
openvpn_client() {
  b_start "$NS_UE" "$OVPN_DIR/client.log" openvpn --config "$OVPN_DIR/client.conf"
  CLIENT_PID=$B_PID
}
openvpn_ready() { b_wait_log "$OVPN_DIR/client.log" "Initialization Sequence Completed" 20 "$CLIENT_PID"; }
openvpn_server_stop() {
  b_stop "$SERVER_PID" 5
  SERVER_PID=""
  nsx "$NS_CONC" nft delete table ip benchnat 2>/dev/null || true
}

# ---------------------------------------------------------------- scenario: ocserv (opt-in)
OCS_DIR=""
ocserv_server() {
  OCS_DIR=$BENCH_WORK/ocserv
  mkdir -p "$OCS_DIR"
  cat >"$OCS_DIR/ocserv.conf" <<EOF
auth = "certificate"
listen-host = $CONC_ADDR
tcp-port = 443
socket-file = $OCS_DIR/ocserv.sock
occtl-socket-file = $OCS_DIR/occtl.sock
pid-file = $OCS_DIR/ocserv.pid
server-cert = $PKI/server.pem
server-key = $PKI/server.key
ca-cert = $PKI/ca.pem
cert-user-oid = 2.5.4.3
isolate-workers = false
max-clients = 4
max-same-clients = 4
keepalive = 300
dpd = 600
mobile-dpd = 600
try-mtu-discovery = false
tls-priorities = "NORMAL:%SERVER_PRECEDENCE:-VERS-ALL:+VERS-TLS1.3"
auth-timeout = 240
cookie-timeout = 300
deny-roaming = false
rekey-time = 172800
rekey-method = ssl
use-occtl = false
device = ocsbench
predictable-ips = true
ipv4-network = 10.9.0.0/24
route = default
ping-leases = false
EOF
  nsx "$NS_CONC" nft -f - <<EOF || b_die "cannot install the NAT table in $NS_CONC"
table ip benchnat { }
delete table ip benchnat
table ip benchnat {
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "conc-op" ip saddr 10.9.0.0/24 masquerade
  }
}
EOF
  b_start "$NS_CONC" "$OCS_DIR/server.log" ocserv -f -c "$OCS_DIR/ocserv.conf"
  SERVER_PID=$B_PID
  wait_listen_on "$NS_CONC" t "$CONC_ADDR" 443 10 || { tail -n 5 "$OCS_DIR/server.log" >&2; return 1; }
}
ocserv_client() {
  b_start "$NS_UE" "$OCS_DIR/client.log" openconnect --protocol=anyconnect --no-dtls --non-inter \
    --cafile "$PKI/ca.pem" --certificate "$PKI/ue1.pem" --sslkey "$PKI/ue1.key" \
    --interface ocsbench "https://$CONC_ADDR:443/"
  CLIENT_PID=$B_PID
}
ocserv_ready() { b_wait_log "$OCS_DIR/client.log" "Configured as|Connected as" 20 "$CLIENT_PID" && sleep 0.3; }
ocserv_server_stop() {
  b_stop "$SERVER_PID" 5
  SERVER_PID=""
  nsx "$NS_CONC" nft delete table ip benchnat 2>/dev/null || true
}

# ---------------------------------------------------------------- measurements
# connect_once SCENARIO: start the probe (ping every 2 ms, exits at the first reply), start the
# client, and record ms from the client's start to the first reply. The firewall is restrictive,
# so a reply can only come through the tunnel. Leaves the client running. Sets CONNECT_MS
# (not a command substitution: the client must be started by this shell).
CONNECT_MS=n/a
connect_once() {
  local sc=$1 plog=$BENCH_WORK/probe.log ppid t0 t1
  timeout 25 ip netns exec "$NS_UE" ping -n -D -i 0.002 -w 20 -c 1 -W 1 "$OPNET_ADDR" >"$plog" 2>&1 &
  ppid=$!
  sleep 0.05
  t0=$(now_s)
  "${sc}_client"
  wait "$ppid"
  t1=$(sed -n 's/^\[\([0-9.]*\)\] .* bytes from .*/\1/p' "$plog" | head -n 1)
  CONNECT_MS=n/a
  [[ -n $t1 ]] || return 1
  CONNECT_MS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", (b - a) * 1000 }')
}

# iperf_once SCENARIO TEST ARGS...: one iperf3 run; appends to R[] the Gbit/s, bytes, retransmits
# and the CPU ticks of the tunnel client and server during the run.
iperf_once() {
  local sc=$1 test=$2 json c0 c1 s0 s1 err bps bytes retr
  shift 2
  json=$BENCH_WORK/iperf-$sc-$test-$((${#R[@]})).json
  b_iperf_server "$IPERF_PORT"
  local ipid=$B_PID
  c0=0 c1=0 s0=0 s1=0
  [[ -n $CLIENT_PID ]] && c0=$(b_cpu_ticks "$CLIENT_PID")
  [[ -n $SERVER_PID ]] && s0=$(b_cpu_ticks "$SERVER_PID")
  timeout $((SECS + 20)) ip netns exec "$NS_UE" iperf3 -c "$OPNET_ADDR" -p "$IPERF_PORT" -t "$SECS" -J "$@" >"$json" 2>&1
  [[ -n $CLIENT_PID ]] && c1=$(b_cpu_ticks "$CLIENT_PID")
  [[ -n $SERVER_PID ]] && s1=$(b_cpu_ticks "$SERVER_PID")
  b_stop "$ipid" 2
  err=$(jq -r '.error // empty' "$json" 2>/dev/null)
  bps=$(jq -r '.end.sum_received.bits_per_second // empty' "$json" 2>/dev/null)
  bytes=$(jq -r '.end.sum_received.bytes // empty' "$json" 2>/dev/null)
  retr=$(jq -r '.end.sum_sent.retransmits // 0' "$json" 2>/dev/null)
  if [[ -n $err || -z $bps ]]; then
    b_log "  $sc $test: iperf3 failed: ${err:-$(tail -n 2 "$json")}"
    R[$sc:$test:fail]=$((${R[$sc:$test:fail]:-0} + 1))
    return 1
  fi
  local gbps
  gbps=$(awk -v b="$bps" 'BEGIN { printf "%.3f", b / 1e9 }')
  R[$sc:$test:gbps]+="$gbps "
  R[$sc:$test:retr]+="$retr "
  R[$sc:$test:bytes]=$((${R[$sc:$test:bytes]:-0} + ${bytes%.*}))
  R[$sc:$test:cticks]=$((${R[$sc:$test:cticks]:-0} + c1 - c0))
  R[$sc:$test:sticks]=$((${R[$sc:$test:sticks]:-0} + s1 - s0))
  b_log "  $sc $test: $gbps Gbit/s, retransmits $retr, cpu client $(((c1 - c0) * 100 / CLK_TCK / SECS))% server $(((s1 - s0) * 100 / CLK_TCK / SECS))% of a core"
}

TESTS=(up1 down1 up4 down4)
declare -A TEST_ARGS=([up1]="" [down1]="-R" [up4]="-P 4" [down4]="-P 4 -R")
declare -A TEST_TITLE=([up1]="1 flow ue->opnet" [down1]="1 flow opnet->ue" [up4]="4 flows ue->opnet" [down4]="4 flows opnet->ue")

# measure SCENARIO: everything after the tunnel (or the open firewall) is up.
measure() {
  local sc=$1 t r p
  read -r p r t <<<"$(b_ping_stats "$NS_UE" "$OPNET_ADDR" 20 0.05)"
  R[$sc:ping_avg]=$p R[$sc:ping_p99]=$r R[$sc:ping_loss]=$t
  b_log "  $sc ping: avg $p ms, p99 (max of 20) $r ms, loss $t%"
  for t in "${TESTS[@]}"; do
    for ((r = 1; r <= RUNS; r++)); do
      # shellcheck disable=SC2086 # TEST_ARGS holds separate words
      iperf_once "$sc" "$t" ${TEST_ARGS[$t]}
    done
  done
}

run_scenario() {
  local sc=$1 r ms
  b_log "== scenario $sc"
  CLIENT_PID="" SERVER_PID=""
  if [[ $sc == raw ]]; then
    bash "$LAB_SH" open >/dev/null || b_die "lab.sh open failed"
    R[raw:connect]=n/a
    measure raw
    bash "$LAB_SH" close >/dev/null || b_die "lab.sh close failed"
    return 0
  fi
  if [[ $sc == ocserv && -n $OCSERV_NOTE ]]; then R[ocserv:skip]=$OCSERV_NOTE; return 0; fi
  if ! "${sc}_server"; then
    R[$sc:skip]="skipped: the $sc server did not start (see the log)"
    b_log "  $sc: server did not start, skipping"
    [[ -n $SERVER_PID ]] && "${sc}_server_stop"
    return 0
  fi
  local times=()
  for ((r = 1; r <= RUNS; r++)); do
    [[ -n $CLIENT_PID ]] && { b_stop "$CLIENT_PID" 5; CLIENT_PID=""; sleep 0.3; }
    connect_once "$sc"
    ms=$CONNECT_MS
    if ! "${sc}_ready"; then
      b_log "  $sc: client did not come up; last log lines:"
      tail -n 5 "$BENCH_WORK"/*client.log "$BENCH_WORK"/*/client.log 2>/dev/null >&2
      R[$sc:skip]="failed: the $sc client did not come up"
      b_stop "$CLIENT_PID" 5; CLIENT_PID=""
      "${sc}_server_stop"
      return 0
    fi
    b_log "  $sc connect -> first packet: $ms ms"
    [[ $ms != n/a ]] && times+=("$ms")
  done
  R[$sc:connect]=$(b_median "${times[@]}")
  local d_ue0 d_conc0 d_ue1 d_conc1
  d_ue0=$(b_tun_dropped "$NS_UE" "${TUN_DEV[$sc]}") d_conc0=$(b_tun_dropped "$NS_CONC" "${TUN_DEV[$sc]}")
  measure "$sc"
  d_ue1=$(b_tun_dropped "$NS_UE" "${TUN_DEV[$sc]}") d_conc1=$(b_tun_dropped "$NS_CONC" "${TUN_DEV[$sc]}")
  [[ $d_ue0 != n/a && $d_ue1 != n/a ]] && R[$sc:drop_ue]=$((d_ue1 - d_ue0))
  [[ $d_conc0 != n/a && $d_conc1 != n/a ]] && R[$sc:drop_conc]=$((d_conc1 - d_conc0))
  b_stop "$CLIENT_PID" 5
  CLIENT_PID=""
  "${sc}_server_stop"
  if [[ $sc == porthole ]]; then
    R[$sc:drop_app]=$(sed -n 's/.*stopped (drops: \(.*\))/\1/p' "$BENCH_WORK/portholed.log" | tail -n 1)
  fi
  # keep the tunnel logs next to the report
  mkdir -p "$LOG_KEEP"
  cp "$BENCH_WORK"/*.log "$LOG_KEEP/" 2>/dev/null
  [[ -d $BENCH_WORK/$sc ]] && cp "$BENCH_WORK/$sc"/*.log "$LOG_KEEP/" 2>/dev/null
  return 0
}

for s in "${SCENARIOS[@]}"; do run_scenario "$s"; done

# ---------------------------------------------------------------- report
gbps_med() { local v; read -r -a v <<<"${R[$1:$2:gbps]:-}"; b_median "${v[@]}"; }
retr_med() { local v; read -r -a v <<<"${R[$1:$2:retr]:-}"; b_median "${v[@]}"; }
# cpu_per_gb SCENARIO c|s [TEST]: CPU seconds per GB (1e9 bytes) over TEST or all tests.
cpu_per_gb() {
  local sc=$1 who=$2 t ticks=0 bytes=0 list=("${TESTS[@]}")
  [[ $sc == raw ]] && { echo n/a; return; }
  [[ -n ${3:-} ]] && list=("$3")
  for t in "${list[@]}"; do
    ticks=$((ticks + ${R[$sc:$t:${who}ticks]:-0}))
    bytes=$((bytes + ${R[$sc:$t:bytes]:-0}))
  done
  ((bytes > 0)) || { echo n/a; return; }
  awk -v t="$ticks" -v h="$CLK_TCK" -v b="$bytes" 'BEGIN { printf "%.2f", t / h / (b / 1e9) }'
}
# core_pct SCENARIO c|s TEST: average share of one core during the runs of TEST.
core_pct() {
  local sc=$1 t=$3 n
  [[ $sc == raw ]] && { echo n/a; return; }
  n=$(wc -w <<<"${R[$sc:$t:gbps]:-}")
  ((n > 0)) || { echo n/a; return; }
  awk -v t="${R[$sc:$t:${2}ticks]:-0}" -v h="$CLK_TCK" -v n="$n" -v s="$SECS" 'BEGIN { printf "%.0f", t / h / (n * s) * 100 }'
}
label() { case $1 in raw) echo "raw routing (no tunnel)" ;; porthole) echo "porthole" ;; openvpn) echo "OpenVPN 2.6 TCP/443" ;; ocserv) echo "ocserv/openconnect TCP/443" ;; esac; }

report() {
  local sc t cpu_model ovpn_v=n/a
  cpu_model=$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -n 1)
  command -v openvpn >/dev/null && ovpn_v=$(openvpn --version 2>/dev/null | head -n 1)
  echo "# porthole benchmark"
  echo
  echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "- kernel: $(uname -r); CPU: ${cpu_model:-unknown}; nproc: $(nproc); RAM: $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)"
  echo "- porthole $("$PORTHOLE_BIN" --version 2>/dev/null | head -n 1) (Release, $BUILD_DIR); $ovpn_v"
  echo "- $(openssl version); $(iperf3 --version 2>/dev/null | head -n 1)"
  if has ocserv && command -v ocserv >/dev/null; then
    echo "- $(ocserv --version 2>&1 | grep -m1 -i ocserv); $(openconnect --version 2>&1 | head -n 1)"
  fi
  echo "- load average at start / end: $LOAD0 / $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews the numbers)"
  echo "- parameters: --runs $RUNS --seconds $SECS; iperf3 TCP (cubic, default buffers) ue (198.18.1.2) <-> opnet (198.18.3.2) through fw and conc"
  echo
  echo "| scenario | 1 flow up Gbit/s | 1 flow down Gbit/s | 4 flows up Gbit/s | 4 flows down Gbit/s | client CPU-s/GB | server CPU-s/GB | ping avg / p99 ms | connect → first packet ms |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
  for sc in "${SCENARIOS[@]}"; do
    if [[ -n ${R[$sc:skip]:-} ]]; then echo "| $(label "$sc") | ${R[$sc:skip]} | | | | | | | |"; continue; fi
    printf '| %s | %s | %s | %s | %s | %s | %s | %s / %s | %s |\n' "$(label "$sc")" \
      "$(b_fmt 2 "$(gbps_med "$sc" up1)")" "$(b_fmt 2 "$(gbps_med "$sc" down1)")" \
      "$(b_fmt 2 "$(gbps_med "$sc" up4)")" "$(b_fmt 2 "$(gbps_med "$sc" down4)")" \
      "$(cpu_per_gb "$sc" c)" "$(cpu_per_gb "$sc" s)" \
      "$(b_fmt 3 "${R[$sc:ping_avg]:-n/a}")" "$(b_fmt 3 "${R[$sc:ping_p99]:-n/a}")" "${R[$sc:connect]:-n/a}"
  done
  local base
  for base in raw openvpn; do
    if ! has porthole || ! has "$base"; then continue; fi
    [[ -z ${R[porthole:skip]:-} && -z ${R[$base:skip]:-} ]] || continue
    local cr=n/a sr=n/a
    [[ $base != raw ]] && cr=$(b_ratio "$(cpu_per_gb porthole c)" "$(cpu_per_gb "$base" c)") &&
      sr=$(b_ratio "$(cpu_per_gb porthole s)" "$(cpu_per_gb "$base" s)")
    printf '| *porthole / %s* | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$(label "$base")" \
      "$(b_ratio "$(gbps_med porthole up1)" "$(gbps_med "$base" up1)")" \
      "$(b_ratio "$(gbps_med porthole down1)" "$(gbps_med "$base" down1)")" \
      "$(b_ratio "$(gbps_med porthole up4)" "$(gbps_med "$base" up4)")" \
      "$(b_ratio "$(gbps_med porthole down4)" "$(gbps_med "$base" down4)")" "$cr" "$sr" \
      "$(b_ratio "${R[porthole:ping_avg]:-n/a}" "${R[$base:ping_avg]:-n/a}")" \
      "$(b_ratio "${R[porthole:connect]:-n/a}" "${R[$base:connect]:-n/a}")"
  done
  echo
  echo "Per test (every run listed; median in bold; CPU as CPU-s/GB and as share of one core during the run):"
  echo
  echo "| scenario | test | Gbit/s per run | median | retransmits (median) | client CPU-s/GB | client % core | server CPU-s/GB | server % core |"
  echo "|---|---|---|---:|---:|---:|---:|---:|---:|"
  for sc in "${SCENARIOS[@]}"; do
    [[ -n ${R[$sc:skip]:-} ]] && continue
    for t in "${TESTS[@]}"; do
      printf '| %s | %s | %s | **%s** | %s | %s | %s | %s | %s |\n' "$sc" "${TEST_TITLE[$t]}" \
        "$(xargs <<<"${R[$sc:$t:gbps]:-}")${R[$sc:$t:fail]:+ (${R[$sc:$t:fail]} failed)}" "$(b_fmt 2 "$(gbps_med "$sc" "$t")")" \
        "$(b_fmt 0 "$(retr_med "$sc" "$t")")" "$(cpu_per_gb "$sc" c "$t")" "$(core_pct "$sc" c "$t")" \
        "$(cpu_per_gb "$sc" s "$t")" "$(core_pct "$sc" s "$t")"
    done
  done
  echo
  echo "ping: 20 echo requests 50 ms apart (idle tunnel); p99 by nearest rank (= max of 20). Loss: $(for sc in "${SCENARIOS[@]}"; do printf '%s %s%%; ' "$sc" "${R[$sc:ping_loss]:-n/a}"; done)"
  echo "packets dropped during the throughput runs: $(for sc in "${SCENARIOS[@]}"; do
    [[ $sc == raw || -n ${R[$sc:skip]:-} ]] && continue
    printf '%s: ue TUN tx_dropped %s, conc TUN tx_dropped %s%s; ' "$sc" "${R[$sc:drop_ue]:-n/a}" "${R[$sc:drop_conc]:-n/a}" "${R[$sc:drop_app]:+, portholed ${R[$sc:drop_app]}}"
  done)"
  echo "connect → first packet: median of $RUNS client starts (a 2 ms ping loop started just before the client; the restrictive firewall drops it until the tunnel carries it)."
}

mkdir -p "$(dirname "$OUT")"
report | tee "$OUT"
b_log "report written to $OUT"
exit 0
