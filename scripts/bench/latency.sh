#!/usr/bin/env bash
# porthole latency under load: one-way delay, jitter and loss of an RTP-like probe (50 pkt/s of
# 172 octets, like G.711 voice) through a 20 Mbit/s bottleneck with a deep buffer, idle and while
# a bulk TCP upload AND a bulk download run through the same tunnel; porthole vs OpenVPN 2.6 in TCP
# mode on 443 (and, as a reference, plain routing without a tunnel). Lab prefix lat_.
#
#   sudo scripts/bench/latency.sh [--only raw,porthole,openvpn] [--rate 20mbit] [--burst 32kb]
#        [--limit 1000000] [--bulk-seconds 18] [--probe-seconds 10] [--idle-seconds 6]
#        [--cc cubic] [--dscp 46|none] [--out FILE.md] [--no-build]
#
# The bottleneck: tc tbf (rate/burst/limit) on fw's egress toward the concentrator (fw-conc,
# upstream) AND toward the ue (fw-ue, downstream), inside the fw namespace, removed at the end.
# Per scenario:
#   idle    probe ue->opnet and opnet->ue at the same time (--idle-seconds)
#   loaded  iperf3 ue->opnet and iperf3 -R opnet->ue (--bulk-seconds, >= 15) through the tunnel;
#           after 3 s (queues full) the probe runs in both directions for --probe-seconds while
#           fw's tbf backlogs and the tunnel TCP socket's Send-Q/notsent are sampled every 0.5 s.
# The default TCP congestion control is set to --cc in every lab namespace (the host's default
# may differ, e.g. bbr); a program may still pick its own per socket (TCP_CONGESTION), and the
# report shows what the tunnel's socket actually used.
# Environment: BUILD_DIR (default build-latency), LAB_PREFIX (default lat_), PORTHOLED_ARGS (more
# portholed options, split on spaces, e.g. "--workers 1").
# Everything lives in the lab namespaces; every process is killed by PID and the lab removed on
# exit, also on failure or Ctrl-C; a watchdog bounds the run.
# shellcheck disable=SC2317 # scenario functions are called indirectly ("${sc}_up")
set -uo pipefail

BENCH_NAME=latency
L_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export LAB_PREFIX=${LAB_PREFIX:-lat_}
BUILD_DIR=${BUILD_DIR:-$(cd "$L_DIR/../.." && pwd)/build-latency}
# shellcheck source=scripts/bench/lib.sh
source "$L_DIR/lib.sh"
# shellcheck source=scripts/bench/latency-lib.sh
source "$L_DIR/latency-lib.sh"

ONLY=raw,porthole,openvpn
RATE=20mbit
BURST=32kb
LIMIT=1000000
BULK_S=18
PROBE_S=10
IDLE_S=6
CC=cubic
PROBE_DSCP=46
PROBE_RATE=50
PROBE_SIZE=172
OUT=""
BUILD=1
while (($#)); do
  case $1 in
    --only) ONLY=${2:?}; shift 2 ;;
    --rate) RATE=${2:?}; shift 2 ;;
    --burst) BURST=${2:?}; shift 2 ;;
    --limit) LIMIT=${2:?}; shift 2 ;;
    --bulk-seconds) BULK_S=${2:?}; shift 2 ;;
    --probe-seconds) PROBE_S=${2:?}; shift 2 ;;
    --idle-seconds) IDLE_S=${2:?}; shift 2 ;;
    --cc) CC=${2:?}; shift 2 ;;
    --dscp) PROBE_DSCP=${2:?}; shift 2 ;;
    --out) OUT=${2:?}; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    -h | --help) sed -n '2,24p' "$0"; exit 0 ;;
    *) b_die "unknown option '$1' (try --help)" ;;
  esac
done
for v in BULK_S PROBE_S IDLE_S LIMIT; do [[ ${!v} =~ ^[0-9]+$ ]] || b_die "$v must be a number"; done
((BULK_S >= 15 && BULK_S <= 60)) || b_die "--bulk-seconds must be 15..60"
((PROBE_S >= 2 && PROBE_S + 4 <= BULK_S)) || b_die "--probe-seconds must be >= 2 and end >= 1 s before the bulk (3 + probe <= bulk - 1)"
((IDLE_S >= 2 && IDLE_S <= 30)) || b_die "--idle-seconds must be 2..30"
[[ $PROBE_DSCP == none || $PROBE_DSCP =~ ^[0-9]+$ ]] || b_die "--dscp: 0..63 or none"
[[ $CC =~ ^[a-z0-9_]+$ ]] || b_die "--cc: a congestion control name, or none"
RATE_BPS=$(l_rate_bps "$RATE")
IFS=, read -r -a SCENARIOS <<<"$ONLY"
for s in "${SCENARIOS[@]}"; do
  case $s in raw | porthole | openvpn) ;; *) b_die "unknown scenario '$s' (raw, porthole, openvpn)" ;; esac
done
OUT=${OUT:-$BUILD_DIR/latency-results.md}

b_require_root
b_require_tools "${LAB_TOOLS[@]}" iperf3 jq tc cmake ninja
[[ ,$ONLY, == *,openvpn,* ]] && ! command -v openvpn >/dev/null && b_die "openvpn not installed (apt-get install openvpn) or drop it: --only raw,porthole"

if ((BUILD)); then b_build porthole portholed; fi
[[ -x $PORTHOLE_BIN && -x $PORTHOLED_BIN ]] || b_die "binaries not found: $PORTHOLE_BIN $PORTHOLED_BIN (drop --no-build)"
l_rtprobe_build

BENCH_WORK=$(mktemp -d /tmp/porthole-latency.XXXXXX)
BENCH_EXTRA_CLEANUP=(l_bottleneck_del)
b_install_traps
TREE_REV=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)
[[ -n $(git -C "$REPO" status --porcelain --untracked-files=no 2>/dev/null) ]] && TREE_REV+=" + uncommitted changes"
BUDGET=$((${#SCENARIOS[@]} * (BULK_S + IDLE_S + 60) + 90))
b_watchdog "$BUDGET"
b_log "scenarios=${SCENARIOS[*]} bottleneck tbf rate $RATE burst $BURST limit $LIMIT; bounded to $BUDGET s; work dir $BENCH_WORK"

LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
b_lab_up
bash "$PKI_SH" "$PKI" >"$BENCH_WORK/pki.log" 2>&1 || { cat "$BENCH_WORK/pki.log" >&2; b_die "pki.sh failed"; }
IPERF_CC=()
if [[ $CC != none ]]; then
  l_cc_all "$CC"
  IPERF_CC=(-C "$CC")
fi
l_bottleneck_add "$RATE" "$BURST" "$LIMIT"
b_log "congestion control '$CC' (mode $L_CC_MODE) in the lab namespaces; tbf on $NS_FW fw-conc and fw-ue"

declare -A R
CLIENT_PID="" SERVER_PID="" UE_IN=""

# ---------------------------------------------------------------- scenarios
raw_up() { bash "$LAB_SH" open >/dev/null || return 1; UE_IN=$UE_ADDR; }
raw_down() { bash "$LAB_SH" close >/dev/null; }

porthole_up() {
  # shellcheck disable=SC2086 # PORTHOLED_ARGS holds separate words
  b_start "$NS_CONC" "$BENCH_WORK/portholed.log" "$PORTHOLED_BIN" --listen "$CONC_ADDR:443" \
    --cert "$PKI/server.pem" --key "$PKI/server.key" --client-ca "$PKI/ca.pem" \
    --pool 100.64.0.0/24 --nat-egress conc-op --tun-name phlat0 --log-level info \
    --control-socket "$BENCH_WORK/portholed.sock" ${PORTHOLED_ARGS:-}
  SERVER_PID=$B_PID
  b_wait_log "$BENCH_WORK/portholed.log" "listening on" 15 "$SERVER_PID" || { tail -n 5 "$BENCH_WORK/portholed.log" >&2; return 1; }
  b_start "$NS_UE" "$BENCH_WORK/porthole.log" "$PORTHOLE_BIN" connect --server "$CONC_ADDR:443" \
    --ca "$PKI/ca.pem" --cert "$PKI/ue1.pem" --key "$PKI/ue1.key" --tun-name phlat0 --log-level info
  CLIENT_PID=$B_PID
  b_wait_log "$BENCH_WORK/porthole.log" "tunnel up" 15 "$CLIENT_PID" || { tail -n 5 "$BENCH_WORK/porthole.log" >&2; return 1; }
  UE_IN=$(nsx "$NS_UE" ip -4 -o addr show dev phlat0 | awk '{ sub("/.*", "", $4); print $4; exit }')
  TUN=phlat0
}
porthole_down() {
  [[ -n $CLIENT_PID ]] && b_stop "$CLIENT_PID" 5
  [[ -n $SERVER_PID ]] && b_stop "$SERVER_PID" 5
  CLIENT_PID="" SERVER_PID=""
}

# OpenVPN 2.6, TCP on 443, the same settings as scripts/bench/run.sh's scenario (AES-256-GCM,
# TLS 1.3, userspace data path, NAT by masquerade) plus tcp-nodelay (TCP_NODELAY on the server,
# pushed to the client: without it Nagle holds small packets back, which is not what anyone
# running voice over OpenVPN-TCP would configure); our own device and table names.
openvpn_up() {
  local d=$BENCH_WORK/openvpn
  mkdir -p "$d"
  cat >"$d/server.conf" <<EOF
dev ovpnlat0
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
tcp-nodelay
verb 3
EOF
  cat >"$d/client.conf" <<EOF
client
dev ovpnlat0
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
  nsx "$NS_CONC" nft -f - <<EOF || return 1
table ip latnat { }
delete table ip latnat
table ip latnat {
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "conc-op" ip saddr 10.8.0.0/24 masquerade
  }
}
EOF
  b_start "$NS_CONC" "$d/server.log" openvpn --config "$d/server.conf"
  SERVER_PID=$B_PID
  b_wait_log "$d/server.log" "Initialization Sequence Completed" 15 "$SERVER_PID" || { tail -n 5 "$d/server.log" >&2; return 1; }
  b_start "$NS_UE" "$d/client.log" openvpn --config "$d/client.conf"
  CLIENT_PID=$B_PID
  b_wait_log "$d/client.log" "Initialization Sequence Completed" 20 "$CLIENT_PID" || { tail -n 5 "$d/client.log" >&2; return 1; }
  UE_IN=$(nsx "$NS_UE" ip -4 -o addr show dev ovpnlat0 | awk '{ sub("/.*", "", $4); print $4; exit }')
  TUN=ovpnlat0
}
openvpn_down() {
  [[ -n $CLIENT_PID ]] && b_stop "$CLIENT_PID" 5
  [[ -n $SERVER_PID ]] && b_stop "$SERVER_PID" 5
  CLIENT_PID="" SERVER_PID=""
  nsx "$NS_CONC" nft delete table ip latnat 2>/dev/null || true
}

# ---------------------------------------------------------------- one scenario
run_scenario() {
  local sc=$1 t
  b_log "== $sc"
  UE_IN="" TUN=""
  if ! "${sc}_up" || [[ -z $UE_IN ]]; then
    R[$sc:skip]="failed: $sc did not come up (logs: $BENCH_WORK)"
    b_log "  $sc did not come up; skipping"
    "${sc}_down"
    return 0
  fi
  ping_ok "$NS_UE" "$OPNET_ADDR" 3 || b_log "  warning: no ping reply ue -> opnet through $sc"
  b_log "  ue address on the path: $UE_IN"

  # idle
  l_probe_pair "$sc-idle" "$IDLE_S" "$UE_IN"
  b_log "  idle up:   $(sed -n 2p "$BENCH_WORK/probe-$sc-idle-up.log")"
  b_log "  idle down: $(sed -n 2p "$BENCH_WORK/probe-$sc-idle-down.log")"

  # loaded: bulk both ways, then the probes
  local d0u d0d i_up i_dn s_pid tdu=n/a tdc=n/a qdu=0 qdc=0
  d0u=$(l_tbf_drops fw-conc) d0d=$(l_tbf_drops fw-ue)
  { l_link_drops; l_snmp_drops; } >"$BENCH_WORK/linkdrops0-$sc"
  local sn0
  sn0=$(l_softnet_drops)
  if [[ -n $TUN ]]; then
    tdu=$(b_tun_dropped "$NS_UE" "$TUN") tdc=$(b_tun_dropped "$NS_CONC" "$TUN")
    qdu=$(l_qdisc_drops "$NS_UE" "$TUN") qdc=$(l_qdisc_drops "$NS_CONC" "$TUN")
  fi
  b_start "$NS_OPNET" "$BENCH_WORK/iperf-s-up.log" timeout $((BULK_S + 30)) iperf3 -s -1 -B "$OPNET_ADDR" -p 5201
  i_up=$B_PID
  b_start "$NS_OPNET" "$BENCH_WORK/iperf-s-down.log" timeout $((BULK_S + 30)) iperf3 -s -1 -B "$OPNET_ADDR" -p 5202
  i_dn=$B_PID
  if ! { wait_listen_on "$NS_OPNET" t "$OPNET_ADDR" 5201 5 && wait_listen_on "$NS_OPNET" t "$OPNET_ADDR" 5202 5; }; then
    b_log "  warning: iperf3 servers not listening"
  fi
  b_start "$NS_UE" "$BENCH_WORK/iperf-$sc-up.json" timeout $((BULK_S + 20)) iperf3 -c "$OPNET_ADDR" -p 5201 -t "$BULK_S" "${IPERF_CC[@]}" -J
  local c_up=$B_PID
  b_start "$NS_UE" "$BENCH_WORK/iperf-$sc-down.json" timeout $((BULK_S + 20)) iperf3 -c "$OPNET_ADDR" -p 5202 -t "$BULK_S" -R "${IPERF_CC[@]}" -J
  local c_dn=$B_PID
  sleep 3
  R[$sc:cc_in_up]=$(l_sock "$NS_UE" '( dport = :5201 )' | awk '{ print $5 }')
  R[$sc:cc_in_down]=$(l_sock "$NS_OPNET" '( sport = :5202 )' | awk '{ print $5 }')
  : >"$BENCH_WORK/samples-$sc"
  l_sampler "$BENCH_WORK/samples-$sc" "$PROBE_S" "$TUN" &
  s_pid=$!
  BENCH_PIDS+=("$s_pid")
  l_probe_pair "$sc-load" "$PROBE_S" "$UE_IN"
  l_wait "$s_pid" 3
  l_wait "$c_up" $((BULK_S + 10))
  l_wait "$c_dn" 10
  l_wait "$i_up" 5
  l_wait "$i_dn" 5
  { l_link_drops; l_snmp_drops; } >"$BENCH_WORK/linkdrops1-$sc"
  R[$sc:linkdrops]=$(l_drops_delta "$BENCH_WORK/linkdrops0-$sc" "$BENCH_WORK/linkdrops1-$sc")
  R[$sc:softnet]=$(($(l_softnet_drops) - sn0))
  R[$sc:tbf_drops_up]=$(($(l_tbf_drops fw-conc) - d0u))
  R[$sc:tbf_drops_down]=$(($(l_tbf_drops fw-ue) - d0d))
  if [[ -n $TUN ]]; then
    local t1u t1c
    t1u=$(b_tun_dropped "$NS_UE" "$TUN") t1c=$(b_tun_dropped "$NS_CONC" "$TUN")
    [[ $tdu != n/a && $t1u != n/a ]] && R[$sc:tun_drop_up]=$((t1u - tdu + $(l_qdisc_drops "$NS_UE" "$TUN") - qdu))
    [[ $tdc != n/a && $t1c != n/a ]] && R[$sc:tun_drop_down]=$((t1c - tdc + $(l_qdisc_drops "$NS_CONC" "$TUN") - qdc))
  fi
  R[$sc:bulk_up]=$(l_iperf_mbps "$BENCH_WORK/iperf-$sc-up.json")
  R[$sc:bulk_down]=$(l_iperf_mbps "$BENCH_WORK/iperf-$sc-down.json")
  R[$sc:retr_up]=$(l_iperf_retr "$BENCH_WORK/iperf-$sc-up.json")
  R[$sc:retr_down]=$(l_iperf_retr "$BENCH_WORK/iperf-$sc-down.json")
  R[$sc:samples]=$(l_sample_means "$BENCH_WORK/samples-$sc")
  b_log "  loaded up:   $(sed -n 2p "$BENCH_WORK/probe-$sc-load-up.log")"
  b_log "  loaded down: $(sed -n 2p "$BENCH_WORK/probe-$sc-load-down.log")"
  b_log "  bulk: up ${R[$sc:bulk_up]} Mbit/s, down ${R[$sc:bulk_down]} Mbit/s; samples (means) ${R[$sc:samples]}"
  "${sc}_down"
  if [[ $sc == porthole ]]; then
    R[$sc:drops]=$(sed -n 's/.*stopped (drops: \(.*\))/\1/p' "$BENCH_WORK/portholed.log" | tail -n 1)
    R[$sc:cdrops]=$(sed -n 's/.*(not sent: \(.*\))$/\1/p' "$BENCH_WORK/porthole.log" | tail -n 1)
  fi
  mkdir -p "$BUILD_DIR/latency-logs"
  cp "$BENCH_WORK"/probe-"$sc"-* "$BENCH_WORK"/iperf-"$sc"-* "$BENCH_WORK/samples-$sc" "$BUILD_DIR/latency-logs/" 2>/dev/null
  [[ $sc == porthole ]] && cp "$BENCH_WORK"/porthole*.log "$BUILD_DIR/latency-logs/" 2>/dev/null
  [[ $sc == openvpn ]] && cp "$BENCH_WORK"/openvpn/*.log "$BUILD_DIR/latency-logs/" 2>/dev/null
  return 0
}

rm -rf "$BUILD_DIR/latency-logs"
for s in "${SCENARIOS[@]}"; do run_scenario "$s"; done
l_bottleneck_del
b_log "bottleneck removed"

# ---------------------------------------------------------------- report
label() { case $1 in raw) echo "no tunnel (routed, reference)" ;; porthole) echo "porthole" ;; openvpn) echo "OpenVPN 2.6 TCP/443" ;; esac; }
dir_label() { case $1 in up) echo "ue→opnet" ;; down) echo "opnet→ue" ;; esac; }
f1() { [[ $1 == n/a ]] && { echo n/a; return; }; printf '%.1f' "$1"; }
f2() { [[ $1 == n/a ]] && { echo n/a; return; }; printf '%.2f' "$1"; }
pct() { [[ $1 == n/a ]] && { echo n/a; return; }; awk -v m="$1" -v r="$RATE_BPS" 'BEGIN { printf "%.0f%%", m * 1e6 / r * 100 }'; }
delay3() { # TAG DIR -> "p50 / p99 / max"
  printf '%s / %s / %s' "$(f1 "$(l_probe_field "$1" "$2" p50_ms)")" "$(f1 "$(l_probe_field "$1" "$2" p99_ms)")" "$(f1 "$(l_probe_field "$1" "$2" max_ms)")"
}
loss() { # TAG DIR -> "L/S"
  printf '%s/%s' "$(l_probe_field "$1" "$2" lost)" "$(l_probe_field "$1" "$2" sent)"
}

kbms() { [[ $1 == n/a ]] && { echo n/a; return; }; awk -v b="$1" -v r="$RATE_BPS" 'BEGIN { printf "%.0f kB (%.0f ms)", b / 1000, b * 8 / r * 1000 }'; }

report() {
  local sc d m ovpn_v=n/a host_cc
  command -v openvpn >/dev/null && ovpn_v=$(openvpn --version 2>/dev/null | head -n 1 | awk '{ print $1, $2 }')
  host_cc=$(sysctl -n net.ipv4.tcp_congestion_control 2>/dev/null || echo unknown)
  echo "# porthole latency under load"
  echo
  echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'); kernel $(uname -r); $(nproc) CPUs; load average at start / end: $LOAD0 / $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "- tree at start: $TREE_REV (the binaries: $( ((BUILD)) && echo "built from it" || echo "--no-build, from $BUILD_DIR as they were"))"
  echo "- porthole $("$PORTHOLE_BIN" --version 2>/dev/null | head -n 1) (Release, $BUILD_DIR); $ovpn_v (TCP/443, AES-256-GCM, TLS 1.3, disable-dco, tcp-nodelay); $(iperf3 --version 2>/dev/null | head -n 1 | awk '{ print $1, $2 }')"
  echo "- **bottleneck**: tbf rate $RATE burst $BURST limit $LIMIT bytes (≈ $(l_ms_of_bytes "$LIMIT") ms of queue) on fw's egress toward conc (upstream) and toward ue (downstream)"
  local how
  case $L_CC_MODE in
    sysctl) how="net.ipv4.tcp_congestion_control=$CC in every lab namespace" ;;
    route) how="congctl $CC on every lab route (the host allows only '$(sysctl -n net.ipv4.tcp_allowed_congestion_control 2>/dev/null)' as a namespace default) and iperf3 -C $CC" ;;
    *) how="left at the namespaces' default" ;;
  esac
  echo "- **TCP congestion control: $CC** — $how; host default: $host_cc. Observed (ss -i) on the senders — tunnel socket ue / conc, inner bulk up / down: $(for sc in "${SCENARIOS[@]}"; do [[ -n ${R[$sc:skip]:-} ]] && continue; read -r -a m <<<"${R[$sc:samples]:-}"; if [[ $sc == raw ]]; then printf '%s: – / –, %s / %s; ' "$sc" "${R[$sc:cc_in_up]:--}" "${R[$sc:cc_in_down]:--}"; else printf '%s: %s / %s, %s / %s; ' "$sc" "${m[14]:--}" "${m[15]:--}" "${R[$sc:cc_in_up]:--}" "${R[$sc:cc_in_down]:--}"; fi; done)"
  echo "- probe: porthole-rtprobe, $PROBE_RATE pkt/s × $PROBE_SIZE B UDP payload, DSCP ${PROBE_DSCP}, one flow each way at once; idle ${IDLE_S} s; loaded: iperf3 upload + iperf3 -R download (1 flow each, ${BULK_S} s), probes from t=3 s for ${PROBE_S} s"
  echo "- one-way delay in ms (receive − send time, kernel receive timestamps, shared clock); jitter = RFC 3550 interarrival jitter (final value); loss = lost/sent"
  echo
  echo "| path | direction | idle p50 / p99 / max ms | idle jitter ms | idle loss | loaded p50 / p99 / max ms | loaded jitter ms | loaded loss | bulk in this direction Mbit/s (% of $RATE) |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|---:|"
  for sc in "${SCENARIOS[@]}"; do
    if [[ -n ${R[$sc:skip]:-} ]]; then echo "| $(label "$sc") | ${R[$sc:skip]} | | | | | | | |"; continue; fi
    for d in up down; do
      printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s (%s) |\n' "$(label "$sc")" "$(dir_label "$d")" \
        "$(delay3 "$sc-idle" "$d")" "$(f2 "$(l_probe_field "$sc-idle" "$d" jitter_ms)")" "$(loss "$sc-idle" "$d")" \
        "$(delay3 "$sc-load" "$d")" "$(f2 "$(l_probe_field "$sc-load" "$d" jitter_ms)")" "$(loss "$sc-load" "$d")" \
        "${R[$sc:bulk_$d]}" "$(pct "${R[$sc:bulk_$d]}")"
    done
  done
  echo
  echo "Where a loaded probe packet waited (means of samples every 0.5 s during the loaded probe; bytes → ms at $RATE). Path of a packet: TUN device qdisc → tunnel program's queue (not sampled) → tunnel TCP socket, not yet sent → fw's tbf (the bottleneck) → receiving tunnel socket, not yet read → TUN → probe."
  echo
  echo "| path | direction | TUN qdisc backlog (entry) | sender socket: not sent | fw tbf backlog | receiver socket: not read | sum ≈ | probe p50 | tunnel TCP sender: Send-Q / send buffer / srtt ms | drops: TUN / tbf | inner TCP retransmits |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  local tq sn tb rq sq rt tund sum sb
  for sc in "${SCENARIOS[@]}"; do
    [[ -n ${R[$sc:skip]:-} ]] && continue
    read -r -a m <<<"${R[$sc:samples]}"
    for d in up down; do
      # up: ue TUN, ue socket -> tbf fw-conc -> conc socket; down: conc TUN, conc socket -> tbf fw-ue -> ue socket
      if [[ $d == up ]]; then tq=${m[10]} sn=${m[4]} tb=${m[0]} rq=${m[6]} sq=${m[3]} rt=${m[5]} sb=${m[12]} tund=${R[$sc:tun_drop_up]:-n/a}
      else tq=${m[11]} sn=${m[8]} tb=${m[1]} rq=${m[2]} sq=${m[7]} rt=${m[9]} sb=${m[13]} tund=${R[$sc:tun_drop_down]:-n/a}; fi
      if [[ $sc == raw ]]; then
        printf '| %s | %s | – | – | %s | – | %s | %s | – | – / %s | %s |\n' "$(label "$sc")" "$(dir_label "$d")" "$(kbms "$tb")" \
          "$(l_ms_of_bytes "$tb") ms" "$(f1 "$(l_probe_field "$sc-load" "$d" p50_ms)") ms" "${R[$sc:tbf_drops_$d]}" "${R[$sc:retr_$d]}"
      else
        sum=$(awk -v a="$tq" -v b="$sn" -v c="$tb" -v e="$rq" 'BEGIN { print a + b + c + e }')
        printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s / %s kB / %s | %s / %s | %s |\n' "$(label "$sc")" "$(dir_label "$d")" \
          "$(kbms "$tq")" "$(kbms "$sn")" "$(kbms "$tb")" "$(kbms "$rq")" "$(l_ms_of_bytes "$sum") ms" \
          "$(f1 "$(l_probe_field "$sc-load" "$d" p50_ms)") ms" "$(kbms "$sq")" "$(awk -v b="$sb" 'BEGIN { printf "%.0f", b / 1000 }')" "$rt" "$tund" "${R[$sc:tbf_drops_$d]}" "${R[$sc:retr_$d]}"
      fi
    done
  done
  echo
  [[ -n ${R[porthole:drops]:-} ]] && echo "- portholed drop counters at stop (whole run): ${R[porthole:drops]}"
  [[ -n ${R[porthole:cdrops]:-} ]] && echo "- porthole client, not sent (whole run): ${R[porthole:cdrops]}"
  for sc in "${SCENARIOS[@]}"; do
    [[ -n ${R[$sc:skip]:-} ]] && continue
    echo "- $sc, loaded phase: drop/error counters that grew in the lab (devices; IPv4/UDP snmp): ${R[$sc:linkdrops]}; host-wide input-backlog drops (softnet, includes other work): ${R[$sc:softnet]}"
  done
  echo
  echo "\"not sent\" = bytes in the sending tunnel socket's buffer not yet transmitted (ss notsent); \"not read\" = Recv-Q of the receiving tunnel socket; Send-Q = not yet acknowledged (in flight + not sent; the ACKs of one direction queue behind the other direction's data in the tbf). TUN drops = the TUN device's tx_dropped + its qdisc's drops (upstream in ue, downstream in conc). Inner TCP retransmits: iperf3's count for the bulk flow of that direction. The queues are bytes of all flows, converted at the bottleneck rate; p50 − sum ≈ time in the tunnel program's own queues and scheduling (not sampled)."
}

mkdir -p "$(dirname "$OUT")"
report | tee "$OUT"
b_log "report written to $OUT (logs in $BUILD_DIR/latency-logs)"
exit 0
