# shellcheck shell=bash disable=SC2034
# Shared helpers for porthole integration tests. Source it first thing in a test:
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
#  [ue] ue-fw 198.18.1.2/24 --- fw-ue 198.18.1.1/24 [fw] fw-conc 198.18.2.1/24 --- conc-fw 198.18.2.2/24 [conc] conc-op 198.18.3.1/24 --- op-conc 198.18.3.2/24 [opnet]
#          fd00:18:1::2/64        fd00:18:1::1/64      fd00:18:2::1/64          fd00:18:2::2/64        fd00:18:3::1/64          fd00:18:3::2/64
#
# Every test gets its own lab (LAB_PREFIX=pt<pid>_), so it never clashes with a user's lab
# (LAB_PREFIX empty). An EXIT trap always kills the processes the test started (by PID),
# runs `lab.sh down` and removes the temp dir — also when the test fails.
#
# Environment (set by CTest, see CMakeLists.txt):
#   PORTHOLE_BIN, PORTHOLED_BIN   the binaries under test
#   PORTHOLECTL_BIN               portholectl (for portholectl_cmd)
#   SCRIPTS_DIR                   <repo>/scripts (defaults to the one next to this file)
#   T_TIMEOUT                     seconds after which a watchdog SIGTERMs the test (cleanup runs)
# Exit codes: 0 pass, 1 fail, 77 skipped (not root / no netns support).

set -uo pipefail

T_NAME=$(basename "${0%.sh}")
T_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SCRIPTS_DIR=${SCRIPTS_DIR:-$(cd "$T_DIR/../../scripts" && pwd)}
LAB_SH=$SCRIPTS_DIR/lab.sh
PKI_SH=$SCRIPTS_DIR/pki.sh

LAB_PREFIX=${LAB_PREFIX:-pt$$_}
export LAB_PREFIX
# The client takes a proxy from https_proxy/HTTPS_PROXY when --proxy is absent: a proxy set on
# the machine must not leak into the tests (proxy_connect.sh sets them itself).
unset https_proxy HTTPS_PROXY
# shellcheck source=scripts/lib/common.sh
source "$SCRIPTS_DIR/lib/common.sh"

# Names the tests use for the TUN devices and pool.
UE_TUN=porthole0
CONC_TUN=portholed0
POOL=100.64.0.0/24
CONC_TUN_ADDR=100.64.0.1
FIRST_UE_ADDR=100.64.0.2
POOL6=fd00:64::/64          # pass --pool6 "$POOL6" to start_portholed
CONC_TUN_ADDR6=fd00:64::1
FIRST_UE_ADDR6=fd00:64::2

T_TMP=""
T_PIDS=()       # every background process we started (killed by PID on exit)
T_LAB_UP=0
T_FAILS=0
LAST_PID=""
LAST_LOG=""

log() { printf '[%s] %s\n' "$T_NAME" "$*"; }
skip() { log "SKIP: $*"; exit 77; }
fail() {
  log "FAIL: $*" >&2
  exit 1
}
# check DESCRIPTION [!] CMD... : soft assertion (CMD's stdout is discarded); a leading "!"
# negates. Records a failure and continues.
check() {
  local what=$1 neg=0 rc
  shift
  if [[ ${1:-} == "!" ]]; then neg=1; shift; fi
  if ((neg)); then "$@" >/dev/null 2>&1; else "$@" >/dev/null; fi
  rc=$?
  if (( (rc == 0) != neg )); then log "ok: $what"; else log "FAIL: $what" >&2; T_FAILS=$((T_FAILS + 1)); fi
}
# check_grew DESCRIPTION COUNTER BEFORE: the fw counter's packet count is now > BEFORE.
check_grew() {
  local now
  now=$(fw_counter_packets "$2")
  check "$1 (fw $2: $3 -> $now)" test "$now" -gt "$3"
}
# check_same DESCRIPTION COUNTER BEFORE: the fw counter's packet count is still BEFORE.
check_same() {
  local now
  now=$(fw_counter_packets "$2")
  check "$1 (fw $2: $3 -> $now)" test "$now" -eq "$3"
}
finish() {
  if ((T_FAILS > 0)); then fail "$T_FAILS check(s) failed"; fi
  log "PASS"
  exit 0
}

require_root() {
  [[ $(id -u) -eq 0 ]] || skip "needs root (network namespaces)"
  [[ -c /dev/net/tun ]] || skip "no /dev/net/tun"
  lab_require_tools "${LAB_TOOLS[@]}" || exit 1
}

# require_tool TOOL [PACKAGE]: fail (not skip) with one clear line if TOOL is missing.
require_tool() {
  command -v "$1" >/dev/null 2>&1 || fail "missing tool '$1' (Debian package ${2:-$1}; run scripts/install-deps.sh)"
}

require_binaries() {
  require_root
  [[ -n ${PORTHOLE_BIN:-} && -x $PORTHOLE_BIN ]] || fail "PORTHOLE_BIN not set or not executable ('${PORTHOLE_BIN:-}')"
  [[ -n ${PORTHOLED_BIN:-} && -x $PORTHOLED_BIN ]] || fail "PORTHOLED_BIN not set or not executable ('${PORTHOLED_BIN:-}')"
}

dump_logs() {
  local f
  [[ -n $T_TMP && -d $T_TMP ]] || return 0
  for f in "$T_TMP"/*.log; do
    [[ -e $f ]] || continue
    echo "----- $(basename "$f") (last 40 lines) -----" >&2
    tail -n 40 "$f" >&2
  done
}

t_cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if ((rc != 0 && rc != 77)); then dump_logs; fi
  local i
  for ((i = ${#T_PIDS[@]} - 1; i >= 0; i--)); do kill_pid_tree "${T_PIDS[i]}" 3; done
  if ((T_LAB_UP)); then bash "$LAB_SH" down >/dev/null 2>&1 || log "warning: lab down failed" >&2; fi
  [[ -n $T_TMP && -d $T_TMP ]] && rm -rf "$T_TMP"
  exit "$rc"
}

# t_setup: root check, temp dir, trap, lab up (incl. its firewall self-check).
t_setup() {
  require_root
  T_TMP=$(mktemp -d "/tmp/porthole-it-$T_NAME.XXXXXX")
  trap t_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  # Watchdog: end the test (and so run the cleanup trap) before CTest's TIMEOUT would
  # SIGKILL it and leave namespaces behind. T_TIMEOUT comes from CMakeLists.txt.
  if [[ ${T_TIMEOUT:-0} -gt 0 ]]; then
    # shellcheck disable=SC2016 # expanded by the watchdog's bash
    setsid bash -c 'sleep "$1"; echo "[watchdog] test exceeded $1 s, terminating it" >&2; kill -TERM "$2"' \
      _ "$T_TIMEOUT" "$$" </dev/null &
    T_PIDS+=("$!")
  fi
  [[ ${T_NO_LAB:-0} == 1 ]] && return 0
  T_LAB_UP=1
  bash "$LAB_SH" up >"$T_TMP/lab-up.out" 2>&1 || { cat "$T_TMP/lab-up.out" >&2; fail "lab.sh up failed"; }
  log "lab '$LAB_PREFIX' up"
}

# start_fake_systemd [--probe-on-ready ADDR]: a NOTIFY_SOCKET listener in conc (a stand-in for
# systemd), started in the background; sets NOTIFY_SOCK and NOTIFY_LOG. Each line received is
# logged as "<CLOCK_MONOTONIC seconds> <line>" (e.g. "60319.265 READY=1"). With
# --probe-on-ready it connects to ADDR:443 the moment READY=1 arrives and logs
# "<t> probe: connect ok" (or "... connect failed: why"). notify_count LINE: how many times
# LINE arrived.
NOTIFY_SOCK=""
NOTIFY_LOG=""
start_fake_systemd() {
  local probe=""
  [[ ${1:-} == --probe-on-ready ]] && probe=$2
  NOTIFY_SOCK=$T_TMP/notify.sock
  NOTIFY_LOG=$T_TMP/notify.log
  cat >"$T_TMP/notify.py" <<'PY'
import socket, sys, time
sock_path, log_path, probe = sys.argv[1], sys.argv[2], sys.argv[3]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sock_path)
s.settimeout(120)
with open(log_path, "a", buffering=1) as log:
    stamp = lambda text: log.write("%.3f %s\n" % (time.monotonic(), text))
    while True:
        try:
            lines = s.recv(4096).decode(errors="replace").split("\n")
        except socket.timeout:
            break
        for line in lines:
            if line:
                stamp(line)
        if probe and "READY=1" in lines:
            c = socket.socket(socket.AF_INET6 if ":" in probe else socket.AF_INET, socket.SOCK_STREAM)
            c.settimeout(2)
            try:
                c.connect((probe, 443))
                stamp("probe: connect ok")
            except OSError as e:
                stamp("probe: connect failed: %s" % e)
            finally:
                c.close()
PY
  bg_in "$NS_CONC" "$T_TMP/notify.out" python3 "$T_TMP/notify.py" "$NOTIFY_SOCK" "$NOTIFY_LOG" "$probe"
  local _
  for _ in $(seq 50); do [[ -S $NOTIFY_SOCK ]] && break; sleep 0.1; done
  [[ -S $NOTIFY_SOCK ]] || fail "the fake systemd (notify listener) did not start"
}
notify_count() { grep -c -- " $1\$" "$NOTIFY_LOG" 2>/dev/null; }

# make_pki: lab PKI into $T_TMP/pki; sets PKI.
make_pki() {
  PKI=$T_TMP/pki
  bash "$PKI_SH" "$PKI" >"$T_TMP/pki.out" 2>&1 || { cat "$T_TMP/pki.out" >&2; fail "pki.sh failed"; }
}

# wait_for_log FILE PATTERN TIMEOUT_S [PID]: wait until grep -E PATTERN matches in FILE.
# Returns 1 on timeout, 2 if PID exited first.
wait_for_log() {
  local file=$1 pat=$2 t=$3 pid=${4:-} i
  for ((i = 0; i < t * 10; i++)); do
    grep -qE -- "$pat" "$file" 2>/dev/null && return 0
    if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
      grep -qE -- "$pat" "$file" 2>/dev/null && return 0
      return 2
    fi
    sleep 0.1
  done
  return 1
}

# wait_exit PID TIMEOUT_S: wait for a background child to exit; sets WAIT_RC. 1 on timeout.
wait_exit() {
  local pid=$1 t=$2 i
  for ((i = 0; i < t * 10; i++)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      wait "$pid"
      WAIT_RC=$?
      return 0
    fi
    sleep 0.1
  done
  return 1
}

# bg_in NS LOGFILE CMD...: start CMD in namespace NS in the background; LAST_PID, LAST_LOG.
bg_in() {
  local ns=$1 logf=$2
  shift 2
  ip netns exec "$ns" "$@" </dev/null >"$logf" 2>&1 &
  LAST_PID=$!
  LAST_LOG=$logf
  T_PIDS+=("$LAST_PID")
}

# start_portholed [--cert F --key F | --listen ADDR:PORT ... | --routed | extra args...]: start the
# concentrator in conc with the lab PKI, pool $POOL and NAT egress conc-op (--routed: no
# --nat-egress). --listen (repeatable) replaces the default $CONC_ADDR:443. Its control socket is
# $T_TMP/portholed.sock (PORTHOLED_SOCK; never the system's /run/porthole) unless the arguments
# name one. Sets PORTHOLED_PID, PORTHOLED_LOG, PORTHOLED_T0 (start time, epoch s). Waits
# (bounded) for "listening on".
# try_start_portholed: the same, but returns 1 instead of failing the test.
PORTHOLED_N=0
try_start_portholed() {
  local cert=$PKI/server.pem key=$PKI/server.key nat=(--nat-egress conc-op) extra=() listen=()
  local ctl=(--control-socket "$T_TMP/portholed.sock")
  PORTHOLED_SOCK=$T_TMP/portholed.sock
  while (($#)); do
    case $1 in
      --cert) cert=$2; shift 2 ;;
      --control-socket) ctl=(--control-socket "$2"); PORTHOLED_SOCK=$2; shift 2 ;;
      --key) key=$2; shift 2 ;;
      --listen) listen+=(--listen "$2"); shift 2 ;;
      --routed) nat=(); shift ;;
      *) extra+=("$1"); shift ;;
    esac
  done
  ((${#listen[@]})) || listen=(--listen "$CONC_ADDR:443")
  PORTHOLED_N=$((PORTHOLED_N + 1))
  PORTHOLED_T0=$(now_s)
  bg_in "$NS_CONC" "$T_TMP/portholed-$PORTHOLED_N.log" "$PORTHOLED_BIN" "${listen[@]}" \
    --cert "$cert" --key "$key" --client-ca "$PKI/ca.pem" --pool "$POOL" "${nat[@]}" \
    --tun-name "$CONC_TUN" --log-level debug "${ctl[@]}" "${extra[@]}"
  PORTHOLED_PID=$LAST_PID
  PORTHOLED_LOG=$LAST_LOG
  if ! wait_for_log "$PORTHOLED_LOG" "listening on" 15 "$PORTHOLED_PID"; then
    log "portholed did not log 'listening on' within 15 s (pid $PORTHOLED_PID $(kill -0 "$PORTHOLED_PID" 2>/dev/null && echo alive || echo exited))" >&2
    return 1
  fi
  log "portholed up (pid $PORTHOLED_PID)"
}
start_portholed() {
  try_start_portholed "$@" || fail "portholed did not start (log: $PORTHOLED_LOG)"
}

# portholectl_cmd ARGS...: portholectl against the test's portholed (its control socket is
# $PORTHOLED_SOCK), run in the root namespace (a unix socket is reached by path). Prints its
# output; returns its exit code.
PORTHOLED_SOCK=""
portholectl_cmd() {
  [[ -n ${PORTHOLECTL_BIN:-} && -x $PORTHOLECTL_BIN ]] || fail "PORTHOLECTL_BIN not set or not executable ('${PORTHOLECTL_BIN:-}')"
  timeout 20 "$PORTHOLECTL_BIN" --socket "$PORTHOLED_SOCK" "$@"
}

# porthole_cmd NAME [extra args]: the client command line for certificate NAME (ue1, ue2,
# rogue-ue) trusting ca.pem; override with --ca F, the server ($CONC_ADDR:443) with --server S,
# the state directory ($T_TMP/state-NAME) with --state-dir D.
PORTHOLE_CMD=()
porthole_cmd() {
  local name=$1 ca=$PKI/ca.pem server=$CONC_ADDR:443 extra=() state=(--state-dir "$T_TMP/state-$1")
  shift
  while (($#)); do
    case $1 in
      --ca) ca=$2; shift 2 ;;
      --server) server=$2; shift 2 ;;
      --state-dir) state=(--state-dir "$2"); shift 2 ;;
      *) extra+=("$1"); shift ;;
    esac
  done
  # A private --state-dir: parallel tests and a user's client never share the status socket.
  PORTHOLE_CMD=("$PORTHOLE_BIN" connect --server "$server" --ca "$ca" --cert "$PKI/$name.pem"
    --key "$PKI/$name.key" --tun-name "$UE_TUN" --log-level debug "${state[@]}" "${extra[@]}")
}

# start_porthole [NAME] [extra args]: start the client in ue (default cert ue1) and wait
# (bounded) for "tunnel up". Sets PORTHOLE_PID, PORTHOLE_LOG.
PORTHOLE_N=0
start_porthole() {
  local name=${1:-ue1}
  (($#)) && shift
  porthole_cmd "$name" "$@"
  PORTHOLE_N=$((PORTHOLE_N + 1))
  bg_in "$NS_UE" "$T_TMP/porthole-$PORTHOLE_N.log" "${PORTHOLE_CMD[@]}"
  PORTHOLE_PID=$LAST_PID
  PORTHOLE_LOG=$LAST_LOG
  wait_for_log "$PORTHOLE_LOG" "tunnel up" 15 "$PORTHOLE_PID" ||
    fail "porthole did not log 'tunnel up' within 15 s (pid $PORTHOLE_PID $(kill -0 "$PORTHOLE_PID" 2>/dev/null && echo alive || echo exited))"
  log "porthole ($name) tunnel up (pid $PORTHOLE_PID)"
}

# stop_pid PID SIGNAL TIMEOUT_S: signal a child and wait for it; sets WAIT_RC. 1 on timeout.
stop_pid() {
  local pid=$1 sig=$2 t=$3
  kill -"$sig" "$pid" 2>/dev/null || true
  wait_exit "$pid" "$t"
}

# ue_tun_addr: the IPv4 address the client put on its TUN.
ue_tun_addr() {
  ip -n "$NS_UE" -4 -o addr show dev "$UE_TUN" 2>/dev/null | awk '{ split($4, a, "/"); print a[1]; exit }'
}
# ue_tun_addr6: the global IPv6 address/prefix the client put on its TUN (e.g. fd00:64::2/64).
ue_tun_addr6() {
  ip -n "$NS_UE" -6 -o addr show dev "$UE_TUN" scope global 2>/dev/null | awk '{ print $4; exit }'
}
# ue_tun_ifindex: the TUN's ifindex (a re-created device gets a new one), empty if absent.
ue_tun_ifindex() {
  ip -n "$NS_UE" -o link show dev "$UE_TUN" 2>/dev/null | awk -F: '{ print $1; exit }'
}

# log_count FILE PATTERN: number of lines matching grep -E PATTERN (0 if none / no file).
log_count() { local c; c=$(grep -cE -- "$2" "$1" 2>/dev/null); echo "${c:-0}"; }

# wait_for_log_count FILE PATTERN N TIMEOUT_S [PID]: wait until PATTERN matches at least N
# lines. Returns 1 on timeout, 2 if PID exited first.
wait_for_log_count() {
  local file=$1 pat=$2 n=$3 t=$4 pid=${5:-} i
  for ((i = 0; i < t * 10; i++)); do
    (($(log_count "$file" "$pat") >= n)) && return 0
    if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
      (($(log_count "$file" "$pat") >= n)) && return 0
      return 2
    fi
    sleep 0.1
  done
  return 1
}

# secs_since T0: seconds (2 decimals) since T0 (from now_s).
# cpu_ticks PID: the process's user + system CPU time so far, in clock ticks (1/100 s).
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
secs_since() { awk -v a="$1" -v b="$(now_s)" 'BEGIN { printf "%.2f", b - a }'; }

# start_pinger NS HOST INTERVAL COUNT: background ping with per-reply timestamps (ping -D) into
# $T_TMP/pinger-N.log, bounded by COUNT and by timeout. Sets PINGER_PID, PINGER_LOG.
PINGER_N=0
start_pinger() {
  local ns=$1 host=$2 iv=$3 count=$4 limit
  limit=$(awk -v i="$iv" -v c="$count" 'BEGIN { printf "%d", i * c + 15 }')
  PINGER_N=$((PINGER_N + 1))
  PINGER_LOG=$T_TMP/pinger-$PINGER_N.log
  timeout "$limit" ip netns exec "$ns" ping -D -n -i "$iv" -c "$count" -W 1 "$host" </dev/null >"$PINGER_LOG" 2>&1 &
  PINGER_PID=$!
  T_PIDS+=("$PINGER_PID")
}
# pinger_last_reply LOG: epoch time (from ping -D) of the last echo reply in LOG, empty if none.
pinger_last_reply() {
  sed -n 's/^\[\([0-9.]*\)\] .* bytes from .*/\1/p' "$1" | tail -n 1
}
# pinger_first_reply_after LOG T: epoch time of the first echo reply logged after T, empty if none.
pinger_first_reply_after() {
  sed -n 's/^\[\([0-9.]*\)\] .* bytes from .*/\1/p' "$1" | awk -v t="$2" '$1 > t { print; exit }'
}

# ping_summary NS HOST COUNT: ping; prints the loss + rtt lines; 0 iff loss == 0.
# Sets PING_LOSS (percent, integer) and PING_RX.
ping_summary() {
  local ns=$1 host=$2 count=$3 out
  out=$(timeout $((count + 10)) ip netns exec "$ns" ping -n -c "$count" -i 0.2 -W 2 "$host" 2>&1)
  PING_RX=$(sed -n 's/.* \([0-9]\+\) received.*/\1/p' <<<"$out")
  PING_RX=${PING_RX:-0}
  PING_LOSS=$(sed -n 's/.* \([0-9.]\+\)% packet loss.*/\1/p' <<<"$out")
  PING_LOSS=${PING_LOSS%%.*}
  PING_LOSS=${PING_LOSS:-100}
  grep -E 'packet loss|rtt' <<<"$out" | sed 's/^/    /'
  [[ $PING_RX -eq $count ]]
}

# snapshot_ue FILE: everything the client is allowed to touch in the ue namespace.
snapshot_ue() {
  {
    echo "## link"; ip -n "$NS_UE" -d link show
    echo "## addr"; ip -n "$NS_UE" addr show
    echo "## route4"; ip -n "$NS_UE" -4 route show table all
    echo "## route6"; ip -n "$NS_UE" -6 route show table all
    echo "## rule4"; ip -n "$NS_UE" -4 rule show
    echo "## rule6"; ip -n "$NS_UE" -6 rule show
  } >"$1" 2>&1
}
