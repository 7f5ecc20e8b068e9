# shellcheck shell=bash disable=SC2034
# Shared helpers for the porthole benchmarks (sourced by scripts/bench/run.sh and scale.sh).
# Defines variables and functions only.
#
# Everything runs in the lab's network namespaces (LAB_PREFIX, default bench_) created by
# scripts/lab.sh; nothing is added to the root namespace. Every process we start is recorded
# in BENCH_PIDS and killed by PID (newest first) by bench_cleanup; the lab is removed by
# `lab.sh down`.

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/../.." && pwd)
SCRIPTS=$REPO/scripts
LAB_SH=$SCRIPTS/lab.sh
PKI_SH=$SCRIPTS/pki.sh

LAB_PREFIX=${LAB_PREFIX:-bench_}
export LAB_PREFIX
# shellcheck source=scripts/lib/common.sh
source "$SCRIPTS/lib/common.sh"

BUILD_DIR=${BUILD_DIR:-$REPO/build-bench}
case $BUILD_DIR in /*) ;; *) BUILD_DIR=$REPO/$BUILD_DIR ;; esac
PORTHOLE_BIN=$BUILD_DIR/src/cli/porthole
PORTHOLED_BIN=$BUILD_DIR/src/cli/portholed
PKI=$BUILD_DIR/bench-pki
CLK_TCK=$(getconf CLK_TCK)

BENCH_NAME=${BENCH_NAME:-bench}
BENCH_PIDS=()
BENCH_LAB_UP=0
BENCH_WORK=""
BENCH_WATCHDOG=""
BENCH_EXTRA_CLEANUP=()   # commands (strings of a function name) run by bench_cleanup first

# b_make_crl FILE: a CRL of the lab CA listing 1,000 random serial numbers (openssl ca's database
# format): portholed runs with a CRL, as the packaged configuration has it (`crl`), and its
# lookup searches a list of realistic length.
b_make_crl() {
  local dir rc
  dir=$(mktemp -d) || return 1
  openssl rand -hex 16000 | fold -w 32 | tr a-f A-F |
    awk '{ printf "R\t301231000000Z\t250101000000Z\t%s\tunknown\t/CN=revoked-%d\n", $1, NR }' >"$dir/index.txt"
  echo 01 >"$dir/crlnumber"
  printf '[ca]\ndefault_ca = c\n[c]\ndatabase = %s/index.txt\ncrlnumber = %s/crlnumber\ndefault_md = sha256\ndefault_crl_days = 30\n' \
    "$dir" "$dir" >"$dir/ca.cnf"
  openssl ca -config "$dir/ca.cnf" -gencrl -cert "$PKI/ca.pem" -keyfile "$PKI/ca.key" -out "$1" 2>/dev/null
  rc=$?
  rm -rf "$dir"
  return $rc
}
b_log() { printf '[%s %s] %s\n' "$BENCH_NAME" "$(date +%T)" "$*" >&2; }
b_die() { printf '%s: error: %s\n' "$BENCH_NAME" "$*" >&2; exit 1; }

b_require_root() {
  [[ $(id -u) -eq 0 ]] || b_die "must run as root (network namespaces, TUN devices); try: sudo $0"
  [[ -c /dev/net/tun ]] || b_die "no /dev/net/tun"
}

# b_require_tools TOOL...: one clear line naming the missing tools.
b_require_tools() {
  local t missing=()
  for t in "$@"; do command -v "$t" >/dev/null 2>&1 || missing+=("$t"); done
  ((${#missing[@]} == 0)) ||
    b_die "missing tool(s): ${missing[*]} (Debian: apt-get install iperf3 jq iproute2 nftables socat ncat iputils-ping openssl cmake ninja-build)"
}

# b_build TARGET...: configure $BUILD_DIR (Release, Ninja) if needed, then build TARGETs
# (ninja rebuilds only what changed). Never touches the lead's build/ directory.
b_build() {
  local t
  if [[ ! -f $BUILD_DIR/CMakeCache.txt ]]; then
    b_log "configuring a Release build in $BUILD_DIR"
    cmake -S "$REPO" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release >"$BUILD_DIR.configure.log" 2>&1 ||
      { tail -n 20 "$BUILD_DIR.configure.log" >&2; b_die "cmake configure failed (log: $BUILD_DIR.configure.log)"; }
    rm -f "$BUILD_DIR.configure.log"
  fi
  for t in "$@"; do
    b_target_exists "$t" || b_die "build target '$t' does not exist in this tree (is it wired into src/CMakeLists.txt?)"
  done
  b_log "building $* in $BUILD_DIR"
  local out
  out=$(cmake --build "$BUILD_DIR" --target "$@" 2>&1) || { tail -n 30 <<<"$out" >&2; b_die "build of $* failed"; }
}

# b_target_exists TARGET: 0 iff the configured build knows TARGET (re-runs cmake if needed).
b_target_exists() {
  # The whole list first: `grep -q` exits at the first match and, under pipefail, cmake's
  # SIGPIPE would then make a present target look absent.
  local targets
  targets=$(cmake --build "$BUILD_DIR" --target help 2>/dev/null) || true
  grep -qE "^$1(:| )" <<<"$targets"
}

# b_start NS LOG CMD...: start CMD in namespace NS in the background (the PID is CMD's own:
# `ip netns exec` execs it). Sets B_PID; records it for cleanup.
b_start() {
  local ns=$1 logf=$2
  shift 2
  ip netns exec "$ns" "$@" </dev/null >"$logf" 2>&1 &
  B_PID=$!
  BENCH_PIDS+=("$B_PID")
}

# b_stop PID [GRACE]: SIGTERM (then SIGKILL after GRACE s) one process we started; forget it.
b_stop() {
  local pid=$1 i keep=()
  kill_pid_tree "$pid" "${2:-5}"
  for i in "${BENCH_PIDS[@]}"; do [[ $i == "$pid" ]] || keep+=("$i"); done
  BENCH_PIDS=("${keep[@]}")
}

# b_wait_log FILE PATTERN SECONDS PID: wait for grep -E PATTERN in FILE; 1 on timeout, 2 if
# PID exited first.
b_wait_log() {
  local i
  for ((i = 0; i < $3 * 20; i++)); do
    grep -qE -- "$2" "$1" 2>/dev/null && return 0
    if ! kill -0 "$4" 2>/dev/null; then grep -qE -- "$2" "$1" 2>/dev/null && return 0; return 2; fi
    sleep 0.05
  done
  return 1
}

# b_lab_up: a fresh lab with our prefix (a leftover one with the same prefix is removed first).
b_lab_up() {
  if lab_any_ns_exists; then
    b_log "a lab with prefix '$LAB_PREFIX' exists (leftover of an earlier run?): removing it"
    bash "$LAB_SH" down >/dev/null 2>&1 || b_die "could not remove the old lab '$LAB_PREFIX'"
  fi
  BENCH_LAB_UP=1
  local out
  out=$(bash "$LAB_SH" up 2>&1) || { printf '%s\n' "$out" >&2; b_die "lab.sh up failed"; }
  b_log "lab '$LAB_PREFIX' up (${LAB_NAMESPACES[*]}), firewall restrictive"
}

# b_watchdog SECONDS: SIGTERM this script after SECONDS, so a hang still ends in cleanup.
b_watchdog() {
  local me=$$
  (
    spid=""
    trap '[[ -n $spid ]] && kill "$spid" 2>/dev/null; exit 0' TERM
    sleep "$1" &
    spid=$!
    wait "$spid"
    echo "$BENCH_NAME: error: watchdog: run exceeded $1 s, stopping" >&2
    kill -TERM "$me" 2>/dev/null
  ) >/dev/null &
  BENCH_WATCHDOG=$!
}

# shellcheck disable=SC2317 # invoked via trap
bench_cleanup() {
  local rc=$? i f
  trap - EXIT INT TERM
  for f in "${BENCH_EXTRA_CLEANUP[@]}"; do "$f" || true; done
  for ((i = ${#BENCH_PIDS[@]} - 1; i >= 0; i--)); do kill_pid_tree "${BENCH_PIDS[i]}" 5; done
  if ((BENCH_LAB_UP)); then
    bash "$LAB_SH" down >/dev/null 2>&1 || echo "$BENCH_NAME: warning: lab.sh down failed" >&2
  fi
  if [[ -n $BENCH_WATCHDOG ]]; then kill "$BENCH_WATCHDOG" 2>/dev/null; wait "$BENCH_WATCHDOG" 2>/dev/null; fi
  if [[ -n $BENCH_WORK && -d $BENCH_WORK ]]; then
    if ((rc != 0)) && [[ ${BENCH_KEEP_LOGS_ON_FAIL:-1} == 1 ]]; then
      echo "$BENCH_NAME: logs kept in $BENCH_WORK" >&2
    else
      rm -rf "$BENCH_WORK"
    fi
  fi
  exit "$rc"
}

b_install_traps() {
  trap bench_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

# ---------------------------------------------------------------- measurements
# b_cpu_ticks PID...: utime+stime (clock ticks) of each PID and all its descendants, summed.
# Fields 14/15 of /proc/PID/stat, counted after the ")" that ends the command name.
b_cpu_ticks() {
  local all=() queue=("$@") p kids
  while ((${#queue[@]})); do
    p=${queue[0]}
    queue=("${queue[@]:1}")
    [[ -r /proc/$p/stat ]] || continue
    all+=("$p")
    kids=$(cat /proc/"$p"/task/*/children 2>/dev/null)
    # shellcheck disable=SC2206 # word splitting of a PID list is intended
    [[ -n $kids ]] && queue+=($kids)
  done
  local total=0 line rest
  for p in "${all[@]}"; do
    line=$(cat /proc/"$p"/stat 2>/dev/null) || continue
    rest=${line##*) }
    # shellcheck disable=SC2086
    set -- $rest
    total=$((total + ${12} + ${13}))
  done
  echo "$total"
}

# b_vmrss_kb PID: VmRSS of PID in kB.
b_vmrss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }

# b_median VALUES...: the median (mean of the middle two for an even count); "n/a" if none.
b_median() {
  (($#)) || { echo n/a; return; }
  printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# b_fmt PRECISION VALUE: printf %.Nf, "n/a" passes through.
b_fmt() { if [[ $2 == n/a || -z $2 ]]; then echo n/a; else printf "%.${1}f" "$2"; fi; }

# b_ratio A B [PRECISION]: A/B, "n/a" when either is n/a or B is 0.
b_ratio() {
  if [[ $1 == n/a || $2 == n/a || -z $1 || -z $2 ]]; then echo n/a; return; fi
  awk -v a="$1" -v b="$2" -v p="${3:-2}" 'BEGIN { if (b == 0) print "n/a"; else printf "%.*f", p, a / b }'
}

# b_iperf_server PORT: one-off iperf3 server (-1) in opnet on $OPNET_ADDR:PORT; sets B_PID.
b_iperf_server() {
  b_start "$NS_OPNET" "$BENCH_WORK/iperf3-server.log" timeout 60 iperf3 -s -1 -B "$OPNET_ADDR" -p "$1"
  wait_listen_on "$NS_OPNET" t "$OPNET_ADDR" "$1" 5 || b_die "iperf3 server did not listen on $OPNET_ADDR:$1"
}

# b_ping_stats NS DST COUNT INTERVAL: "avg max loss%" of ping RTTs in ms (max = p99 for <=100
# samples by nearest rank), or "n/a n/a 100".
b_ping_stats() {
  local out
  out=$(timeout $((${3} + 10)) ip netns exec "$1" ping -n -c "$3" -i "$4" -W 1 "$2" 2>&1)
  sed -n 's/.*time=\([0-9.]*\) ms.*/\1/p' <<<"$out" | sort -g | awk -v n="$3" '
    { v[NR] = $1; s += $1 }
    END {
      if (NR == 0) { print "n/a n/a 100"; exit }
      k = int(0.99 * NR + 0.999999); if (k < 1) k = 1
      printf "%.3f %.3f %d\n", s / NR, v[k], (n - NR) * 100 / n
    }'
}

# b_tun_dropped NS DEV: packets the kernel dropped on the transmit side of DEV (and of every
# device whose name starts with DEV, e.g. ocserv's per-user devices) - for a TUN device: packets
# routed to it that the tunnel process did not read in time. "n/a" if there is no such device.
b_tun_dropped() {
  local v
  v=$(ip -n "$1" -s -j link show 2>/dev/null |
    jq -r --arg d "$2" '[.[] | select(.ifname | startswith($d)) | .stats64.tx.dropped] | if length == 0 then empty else add end' 2>/dev/null)
  echo "${v:-n/a}"
}
