#!/usr/bin/env bash
# porthole scale benchmark: N simulated UEs (porthole-uesim, from the lab's ue namespace) against
# one portholed (pool /16), in the lab (LAB_PREFIX=bench_). Prints a markdown report and writes it
# to --out.
#
#   sudo scripts/bench/scale.sh [--sessions 1000] [--rate 1000] [--handshake-threads N]
#                               [--workers N] [--probe-interval MS] [--out FILE.md] [--no-build]
#
# Measures: TLS handshakes/s while connecting (uesim's handshake_per_s); portholed's own CPU per
# full handshake (connect phase) and per resumed one (resume phase: every simulated UE closes and
# reconnects offering its TLS 1.3 session ticket, uesim --resume; uesim reads portholed's
# /proc/PID/stat at the phase boundaries, --cpu-pid); portholed VmRSS before
# and with all N sessions up, and per tunnel; kernel TCP socket memory in conc (/proc/net/sockstat
# "TCP: ... mem PAGES" x page size) before/with, per tunnel; a real UE's (porthole client, ue1)
# iperf3 throughput, 1 flow, 5 s, ue -> opnet, without and with the N simulated UEs connected;
# the real UE's ping RTT through its tunnel (every 10 ms) idle and while the N connect and
# reconnect (handshakes run on the handshake threads, or in the event loop a few per turn);
# every simulated UE's 3 echo probes through its tunnel (each round spread over --probe-interval,
# default N/10 ms) answered, and the concentrator TUN device's drops meanwhile; portholed's CPU
# per thread (its event loops, --workers).
# Environment: BUILD_DIR (default build-bench), LAB_PREFIX (default bench_), UESIM_BIN (a prebuilt
# porthole-uesim instead of building the target).
set -uo pipefail

BENCH_NAME=scale
# shellcheck source=scripts/bench/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

N=1000
RATE=1000
OUT=""
BUILD=1
IPERF_SECS=5
HS_THREADS=""  # portholed's default
WORKERS=""     # portholed's default (one event loop per CPU)
PROBE_INTERVAL_MS=""  # default: N/10 ms, at least 100 (below)
while (($#)); do
  case $1 in
    --sessions) N=${2:?--sessions needs a number}; shift 2 ;;
    --rate) RATE=${2:?--rate needs a number}; shift 2 ;;
    --out) OUT=${2:?--out needs a file}; shift 2 ;;
    --handshake-threads) HS_THREADS=${2:?--handshake-threads needs a number}; shift 2 ;;
    --workers) WORKERS=${2:?--workers needs a number}; shift 2 ;;
    --probe-interval) PROBE_INTERVAL_MS=${2:?--probe-interval needs milliseconds}; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    -h | --help) sed -n '2,20p' "$0"; exit 0 ;;
    *) b_die "unknown option '$1' (try --help)" ;;
  esac
done
if ! [[ $N =~ ^[0-9]+$ ]] || ((N < 1 || N > 60000)); then b_die "--sessions must be 1..60000"; fi
if ! [[ $RATE =~ ^[0-9]+$ ]] || ((RATE < 1)); then b_die "--rate must be a positive number"; fi
if [[ -n $HS_THREADS ]] && ! [[ $HS_THREADS =~ ^[0-9]+$ && $HS_THREADS -le 64 ]]; then b_die "--handshake-threads must be 0..64"; fi
if [[ -n $WORKERS ]] && ! [[ $WORKERS =~ ^[0-9]+$ && $WORKERS -le 64 ]]; then b_die "--workers must be 0..64"; fi
if [[ -n $PROBE_INTERVAL_MS ]] && ! [[ $PROBE_INTERVAL_MS =~ ^[0-9]+$ && $PROBE_INTERVAL_MS -ge 1 && $PROBE_INTERVAL_MS -le 10000 ]]; then
  b_die "--probe-interval must be 1..10000 (milliseconds)"
fi
OUT=${OUT:-$BUILD_DIR/scale-results.md}

b_require_root
b_require_tools "${LAB_TOOLS[@]}" iperf3 jq cmake ninja getconf

# Memory: be conservative (TLS state + buffers on both sides, ~300 kB per simulated UE in all).
avail_kb=$(awk '/^MemAvailable:/ { print $2 }' /proc/meminfo)
need_kb=$((N * 300 + 512 * 1024))
((avail_kb > need_kb)) || b_die "--sessions $N needs about $((need_kb / 1024)) MiB free, only $((avail_kb / 1024)) MiB available"

UESIM_BIN_ENV=${UESIM_BIN:-}
UESIM_BIN=${UESIM_BIN:-$BUILD_DIR/src/sim/porthole-uesim}
if ((BUILD)); then
  b_build porthole portholed
  if [[ -z $UESIM_BIN_ENV ]]; then
    b_target_exists porthole-uesim ||
      b_die "the build has no target 'porthole-uesim' (src/sim not wired into src/CMakeLists.txt yet?); or set UESIM_BIN=/path/to/porthole-uesim"
    b_build porthole-uesim
  fi
fi
[[ -x $PORTHOLE_BIN && -x $PORTHOLED_BIN ]] || b_die "binaries not found: $PORTHOLE_BIN $PORTHOLED_BIN"
[[ -x $UESIM_BIN ]] || b_die "porthole-uesim not found at $UESIM_BIN (build target porthole-uesim)"

# File descriptors: portholed needs one per session (+ a few), uesim one per session; both
# inherit this shell's limit.
NOFILE=$((N + 4096))
if (($(ulimit -Hn) < NOFILE)); then ulimit -Hn "$NOFILE" 2>/dev/null || b_die "cannot raise the hard fd limit to $NOFILE"; fi
ulimit -Sn "$NOFILE" || b_die "cannot raise the fd limit to $NOFILE"

HOLD=$((IPERF_SECS + 12))
UESIM_DURATION=$((2 * N / RATE + 70 + HOLD)) # connect, close, reconnect (--resume), hold
# Every simulated UE sends 3 echo probes through its tunnel, each round spread over the probe
# interval: by default N/10 ms (at least 100), i.e. 10,000 probes/s and as many replies. A check
# that every tunnel carries traffic both ways to the right UE, not a packet-rate test: with all
# 10,000 in 100 ms (--probe-interval 100: 100,000/s) this 2-vCPU lab is overloaded and ~10 % of
# the replies are dropped in the concentrator's TUN queue (docs/performance.md).
PROBE_INTERVAL_MS=${PROBE_INTERVAL_MS:-$((N / 10 > 100 ? N / 10 : 100))}
BENCH_WORK=$(mktemp -d /tmp/porthole-scale.XXXXXX)
b_install_traps
b_watchdog $((UESIM_DURATION + 180))
b_log "sessions=$N rate=$RATE/s; fd limit $(ulimit -n); work dir $BENCH_WORK"

b_lab_up
bash "$PKI_SH" "$PKI" >"$BENCH_WORK/pki.log" 2>&1 || { cat "$BENCH_WORK/pki.log" >&2; b_die "pki.sh failed"; }

PAGE=$(getconf PAGESIZE)
# sockstat_tcp: "inuse mem_pages" of TCP in conc.
# shellcheck disable=SC2016 # $i is awk's
sockstat_tcp() { nsx "$NS_CONC" awk '/^TCP:/ { for (i = 2; i < NF; i++) { if ($i == "inuse") u = $(i+1); if ($i == "mem") m = $(i+1) } } END { print u + 0, m + 0 }' /proc/net/sockstat; }

iperf_real_ue() { # -> Gbit/s of one 5 s flow ue -> opnet through the real UE's tunnel
  local json=$BENCH_WORK/iperf-$1.json ipid
  b_iperf_server 5201
  ipid=$B_PID
  timeout $((IPERF_SECS + 20)) ip netns exec "$NS_UE" iperf3 -c "$OPNET_ADDR" -p 5201 -t "$IPERF_SECS" -J >"$json" 2>&1
  b_stop "$ipid" 2
  jq -r '(.end.sum_received.bits_per_second // empty) / 1e9 | . * 1000 | round / 1000' "$json" 2>/dev/null || echo n/a
}

# ---------------------------------------------------------------- concentrator + a real UE
b_make_crl "$PKI/bench-crl.pem" || b_die "cannot make the benchmark CRL"
b_start "$NS_CONC" "$BENCH_WORK/portholed.log" "$PORTHOLED_BIN" --listen "$CONC_ADDR:443" \
  --cert "$PKI/server.pem" --key "$PKI/server.key" --client-ca "$PKI/ca.pem" --crl "$PKI/bench-crl.pem" \
  --pool 100.64.0.0/16 --max-sessions $((N + 64)) --nat-egress conc-op --tun-name phscale0 --log-level warn \
  --control-socket "$BENCH_WORK/portholed.sock" ${HS_THREADS:+--handshake-threads "$HS_THREADS"} \
  ${WORKERS:+--workers "$WORKERS"}
SERVER_PID=$B_PID
sleep 0.3
if ! kill -0 "$SERVER_PID" 2>/dev/null || ! wait_listen_on "$NS_CONC" t "$CONC_ADDR" 443 15; then
  tail -n 5 "$BENCH_WORK/portholed.log" >&2
  b_die "portholed did not start"
fi
b_log "portholed pid $SERVER_PID, fd limit $(awk '/Max open files/ { print $4 }' "/proc/$SERVER_PID/limits")"

b_start "$NS_UE" "$BENCH_WORK/porthole.log" "$PORTHOLE_BIN" connect --server "$CONC_ADDR:443" \
  --ca "$PKI/ca.pem" --cert "$PKI/ue1.pem" --key "$PKI/ue1.key" --tun-name phscale0 --log-level info
CLIENT_PID=$B_PID
b_wait_log "$BENCH_WORK/porthole.log" "tunnel up" 15 "$CLIENT_PID" ||
  { tail -n 5 "$BENCH_WORK/porthole.log" >&2; b_die "the real UE's tunnel did not come up"; }

# skmem_443: bytes allocated to the established :443 sockets in conc right now (ss -tm skmem:
# r rmem_alloc + t wmem_alloc + f fwd_alloc + w wmem_queued + o opt/other), and their count.
skmem_443() {
  nsx "$NS_CONC" ss -tmnH state established "( sport = :443 )" 2>/dev/null |
    awk '/skmem:/ { n++; s = $0; sub(/.*skmem:\(/, "", s); sub(/\).*/, "", s); k = split(s, f, ",")
                   for (i = 1; i <= k; i++) if (f[i] ~ /^(r|t|f|w|o)[0-9]/) b += substr(f[i], 2) }
         END { print n + 0, b + 0 }'
}

# Baseline with only the real UE connected, idle (measured before any bulk transfer, so no
# socket buffers are still charged from it).
sleep 1
RSS0=$(b_vmrss_kb "$SERVER_PID")
read -r SOCK_INUSE0 SOCK_MEM0 <<<"$(sockstat_tcp)"
read -r SK_N0 SK_B0 <<<"$(skmem_443)"
b_log "before: portholed VmRSS $RSS0 kB; conc TCP sockets $SOCK_INUSE0, TCP mem $SOCK_MEM0 pages; skmem $SK_B0 B on $SK_N0 :443 sockets"
GBPS0=$(iperf_real_ue alone)
b_log "real UE alone: $GBPS0 Gbit/s"

# ping_rtts FILE: "p50 p99 max count" of the RTTs (ms) in a ping log, or "n/a n/a n/a 0".
ping_rtts() {
  sed -n 's/.*time=\([0-9.]*\) ms.*/\1/p' "$1" | sort -g | awk '
    { v[NR] = $1 }
    END {
      if (NR == 0) { print "n/a n/a n/a 0"; exit }
      a = int(0.5 * NR + 0.999999); b = int(0.99 * NR + 0.999999)
      printf "%.2f %.2f %.2f %d\n", v[a], v[b], v[NR], NR
    }'
}
timeout 10 ip netns exec "$NS_UE" ping -n -i 0.01 -c 300 -W 1 "$OPNET_ADDR" >"$BENCH_WORK/ping-idle.log" 2>&1
read -r PING0_P50 PING0_P99 PING0_MAX PING0_N <<<"$(ping_rtts "$BENCH_WORK/ping-idle.log")"
b_log "real UE ping idle: p50 $PING0_P50 ms, p99 $PING0_P99 ms, max $PING0_MAX ms ($PING0_N replies)"

# ---------------------------------------------------------------- N simulated UEs
# uesim uses the ue namespace's routing table; the real UE's full-tunnel routes keep a host
# route to the concentrator via ue-fw, so the simulated UEs' TCP goes straight to 198.18.2.2:443.
# All simulated UEs share one source address: with N connected plus N cut ones in TIME_WAIT
# (--resume), the default ephemeral range (32768-60999) is so full that every connect() scans it
# for a free port (uesim at 100 % CPU in __inet_hash_connect for 12 s at 10,000, its handshakes
# timing out meanwhile). Real UEs each have their own address; the lab's ue namespace gets the
# whole range instead.
nsx "$NS_UE" sysctl -qw net.ipv4.ip_local_port_range="1024 65535" ||
  b_die "cannot widen the ephemeral port range in $NS_UE"
CPU_CONNECT0=$(b_cpu_ticks "$SERVER_PID")
TUN_DROP0=$(b_tun_dropped "$NS_CONC" phscale0)
b_start "$NS_UE" "$BENCH_WORK/uesim.log" "$UESIM_BIN" --server "$CONC_ADDR:443" --ca "$PKI/ca.pem" \
  --mint-ca-cert "$PKI/ca.pem" --mint-ca-key "$PKI/ca.key" --sessions "$N" --connect-rate "$RATE" \
  --probe "$OPNET_ADDR" --probe-interval "$PROBE_INTERVAL_MS" --hold "$HOLD" --duration "$UESIM_DURATION" --resume --cpu-pid "$SERVER_PID"
UESIM_PID=$B_PID
# The real UE's RTT while they connect and reconnect (bounded: at most the connect phases).
b_start "$NS_UE" "$BENCH_WORK/ping-storm.log" ping -n -i 0.01 -W 1 -w $((2 * N / RATE + 60)) "$OPNET_ADDR"
PING_PID=$B_PID
b_wait_log "$BENCH_WORK/uesim.log" "uesim: holding for|uesim: FAIL" $((UESIM_DURATION - HOLD)) "$UESIM_PID"
b_stop "$PING_PID" 2
read -r PING1_P50 PING1_P99 PING1_MAX PING1_N <<<"$(ping_rtts "$BENCH_WORK/ping-storm.log")"
b_log "real UE ping while $N connect and reconnect: p50 $PING1_P50 ms, p99 $PING1_P99 ms, max $PING1_MAX ms ($PING1_N replies)"
if ! grep -q "uesim: holding for" "$BENCH_WORK/uesim.log"; then
  tail -n 15 "$BENCH_WORK/uesim.log" >&2
  b_die "the simulated UEs did not all come up"
fi
CPU_CONNECT1=$(b_cpu_ticks "$SERVER_PID")
# Downstream packets (probe replies, the real UE's ping) dropped because portholed did not read
# its TUN device in time, while the N connected, probed and reconnected.
TUN_DROP1=$(b_tun_dropped "$NS_CONC" phscale0)
PROBE_LINE=$(grep -m1 '^uesim: probes:' "$BENCH_WORK/uesim.log")
b_log "conc TUN device tx dropped from connect to hold: $((TUN_DROP1 - TUN_DROP0)); ${PROBE_LINE#uesim: }"
# portholed's own CPU for N TLS handshakes + configurations, per phase as uesim measured it at
# the phase boundaries: full handshakes (connect) and resumed ones (close + reconnect with the
# ticket). Handshakes per CPU-second is its capacity per core, whatever the load generator
# could offer.
b_log "portholed CPU from connect to hold (full + resumed handshakes, probes): $((CPU_CONNECT1 - CPU_CONNECT0)) ticks"
sleep 2
RSS1=$(b_vmrss_kb "$SERVER_PID")
read -r SOCK_INUSE1 SOCK_MEM1 <<<"$(sockstat_tcp)"
read -r SK_N1 SK_B1 <<<"$(skmem_443)"
b_log "with $N: portholed VmRSS $RSS1 kB; conc TCP sockets $SOCK_INUSE1, TCP mem $SOCK_MEM1 pages; skmem $SK_B1 B on $SK_N1 :443 sockets"
GBPS1=$(iperf_real_ue loaded)
b_log "real UE with $N simulated UEs connected: $GBPS1 Gbit/s"
SERVER_CPU_TICKS=$(b_cpu_ticks "$SERVER_PID")
# CPU per thread (event loops are named portholed:N; the main thread runs loop 0): how the
# connections and their handshakes spread over the loops.
THREAD_CPU=$(for t in /proc/"$SERVER_PID"/task/*; do
  awk -v h="$CLK_TCK" -v name="$(cat "$t/comm")" '{ sub(/^.*\) /, ""); printf "%s %.1f s, ", name, ($12 + $13) / h }' "$t/stat"
done)
THREAD_CPU=${THREAD_CPU%, }
b_log "portholed CPU by thread: $THREAD_CPU"

for ((i = 0; i < (UESIM_DURATION + 10) * 10; i++)); do kill -0 "$UESIM_PID" 2>/dev/null || break; sleep 0.1; done
wait "$UESIM_PID" 2>/dev/null
UESIM_RC=$?
b_stop "$UESIM_PID" 2
SUMMARY=$(grep -m1 '^uesim: sessions=' "$BENCH_WORK/uesim.log")
VERDICT=$(grep -E '^uesim: (PASS|FAIL)' "$BENCH_WORK/uesim.log" | tail -n 1)
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<" ${SUMMARY#uesim: }"; }
HS_PER_CORE=$(field full_per_cpu_s)
RESUMED_PER_CORE=$(field resumed_per_cpu_s)
b_log "portholed full handshakes per CPU-second: ${HS_PER_CORE:-n/a} ($(field connect_cpu_s) s CPU for $(field connected)); resumed handshakes per CPU-second: ${RESUMED_PER_CORE:-n/a} ($(field resume_cpu_s) s CPU for $(field resumed))"

b_stop "$CLIENT_PID" 5
b_stop "$SERVER_PID" 5
mkdir -p "$BUILD_DIR/bench-logs"
cp "$BENCH_WORK/uesim.log" "$BENCH_WORK/portholed.log" "$BUILD_DIR/bench-logs/" 2>/dev/null

report() {
  echo "# porthole scale benchmark"
  echo
  echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'); kernel $(uname -r); CPU $(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -n 1); nproc $(nproc)"
  echo "- porthole $("$PORTHOLE_BIN" --version 2>/dev/null | head -n 1) (Release, $BUILD_DIR); $(openssl version); portholed handshake threads: ${HS_THREADS:-default}, event loops: ${WORKERS:-default}"
  echo "- $N simulated UEs (porthole-uesim, minted ECDSA client certs, TLS 1.3) at $RATE connections/s from ue, then each closed and reconnected at the same rate offering its session ticket (--resume); pool 100.64.0.0/16; portholed checks UE certificates against a CRL of 1,000 revoked ones, as the packaged configuration does; one real UE (porthole client) connected throughout"
  echo "- uesim: ${SUMMARY#uesim: }"
  echo "- uesim verdict: ${VERDICT#uesim: } (exit $UESIM_RC)"
  echo
  echo "| metric | without | with $N simulated UEs | per tunnel |"
  echo "|---|---:|---:|---:|"
  echo "| TLS handshakes/s while connecting (uesim handshake_per_s) | | $(field handshake_per_s) | |"
  echo "| portholed full handshakes per CPU-second (its own CPU while connecting) | | ${HS_PER_CORE:-n/a} | |"
  echo "| TLS resumptions/s while reconnecting (uesim resume_per_s) | | $(field resume_per_s) | |"
  echo "| portholed resumed handshakes per CPU-second (its own CPU while reconnecting) | | ${RESUMED_PER_CORE:-n/a} | |"
  echo "| sessions reconnected / resumed | | $(field reconnected) / $(field resumed) | |"
  echo "| sessions connected / distinct addresses | | $(field connected) / $(field assigned_distinct) | |"
  printf '| portholed VmRSS | %s MiB | %s MiB | %s kB |\n' "$(awk -v k="$RSS0" 'BEGIN { printf "%.1f", k / 1024 }')" \
    "$(awk -v k="$RSS1" 'BEGIN { printf "%.1f", k / 1024 }')" "$(awk -v a="$RSS0" -v b="$RSS1" -v n="$N" 'BEGIN { printf "%.1f", (b - a) / n }')"
  printf '| conc kernel TCP socket memory (sockstat mem × %s B) | %s kB (%s sockets) | %s kB (%s sockets) | %s kB |\n' "$PAGE" \
    $((SOCK_MEM0 * PAGE / 1024)) "$SOCK_INUSE0" $((SOCK_MEM1 * PAGE / 1024)) "$SOCK_INUSE1" \
    "$(awk -v a="$SOCK_MEM0" -v b="$SOCK_MEM1" -v p="$PAGE" -v n="$N" 'BEGIN { printf "%.2f", (b - a) * p / 1024 / n }')"
  printf '| conc :443 sockets, allocated socket memory (ss -tm skmem r+t+f+w+o) | %s B (%s sockets) | %s kB (%s sockets) | %s B |\n' \
    "$SK_B0" "$SK_N0" $((SK_B1 / 1024)) "$SK_N1" "$(awk -v a="$SK_B0" -v b="$SK_B1" -v n="$N" 'BEGIN { printf "%.0f", (b - a) / n }')"
  echo "| real UE iperf3, 1 flow ue→opnet, ${IPERF_SECS} s (Gbit/s) | $GBPS0 | $GBPS1 | |"
  echo "| real UE ping RTT every 10 ms, p50 / p99 / max (ms): idle, and while the $N connect and reconnect | $PING0_P50 / $PING0_P99 / $PING0_MAX | $PING1_P50 / $PING1_P99 / $PING1_MAX | |"
  echo "| probe echoes answered (uesim: each session 3, each round spread over $PROBE_INTERVAL_MS ms) | | $(field replies) of $(field probes_sent) | |"
  echo "| conc TUN device tx dropped, from connect to hold (downstream packets portholed did not read in time) | | $((TUN_DROP1 - TUN_DROP0)) | |"
  echo "| portholed CPU time so far (s) | | $(awk -v t="$SERVER_CPU_TICKS" -v h="$CLK_TCK" 'BEGIN { printf "%.1f", t / h }') | |"
  echo "| portholed CPU by thread so far | | $THREAD_CPU | |"
}
mkdir -p "$(dirname "$OUT")"
report | tee "$OUT"
b_log "report written to $OUT"
exit 0
