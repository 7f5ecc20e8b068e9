#!/usr/bin/env bash
# porthole end-to-end demo: build, lab, PKI, concentrator + client, then show that ICMP, UDP
# and TCP reach the operator network through one TLS session on TCP 443 while the firewall
# blocks every direct path. Run as root on Debian 12:   sudo scripts/demo.sh [--keep]
#
#  [ue] ue-fw 198.18.1.2/24 --- fw-ue 198.18.1.1/24 [fw] fw-conc 198.18.2.1/24 --- conc-fw 198.18.2.2/24 [conc] conc-op 198.18.3.1/24 --- op-conc 198.18.3.2/24 [opnet]
#
# Options:
#   --keep        leave lab, portholed and porthole running (clean up with: scripts/lab.sh down)
#   --no-build    skip install-deps and the build (use the binaries in $BUILD_DIR)
#   --size MB     size of the TCP transfer (default 50)
# Environment: BUILD_DIR (default build), LAB_PREFIX (default empty: namespaces ue fw conc opnet).
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SCRIPTS=$REPO/scripts
# shellcheck source=scripts/lib/common.sh
source "$SCRIPTS/lib/common.sh"

KEEP=0
BUILD=1
SIZE_MB=50
while (($#)); do
  case $1 in
    --keep) KEEP=1; shift ;;
    --no-build) BUILD=0; shift ;;
    --size) SIZE_MB=${2:?--size needs a number}; shift 2 ;;
    -h | --help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "demo: error: unknown option '$1' (try --help)" >&2; exit 2 ;;
  esac
done
[[ $SIZE_MB =~ ^[0-9]+$ && $SIZE_MB -ge 1 && $SIZE_MB -le 2000 ]] || { echo "demo: error: --size must be 1..2000" >&2; exit 2; }

cd "$REPO" || exit 1
BUILD_DIR=${BUILD_DIR:-build}
case $BUILD_DIR in /*) ;; *) BUILD_DIR=$REPO/$BUILD_DIR ;; esac
PORTHOLE_BIN=$BUILD_DIR/src/cli/porthole
PORTHOLED_BIN=$BUILD_DIR/src/cli/portholed
PKI=$BUILD_DIR/lab-pki
WORK=""
PIDS=()
LAB_STARTED=0
FAILED=0

heading() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
info() { printf '   %s\n' "$*"; }
good() { printf '   \033[32m[ok]\033[0m %s\n' "$*"; }
bad() { printf '   \033[31m[FAIL]\033[0m %s\n' "$*"; FAILED=$((FAILED + 1)); }
die() { printf '\ndemo: error: %s\n' "$*" >&2; exit 1; }

# shellcheck disable=SC2317 # invoked via trap
cleanup() {
  local rc=$? i
  trap - EXIT INT TERM
  if ((KEEP && rc == 0)); then
    heading "left running (--keep)"
    info "portholed pid ${PORTHOLED_PID:-?} (log $WORK/portholed.log), porthole pid ${PORTHOLE_PID:-?} (log $WORK/porthole.log)"
    info "try:      ip netns exec ${NS_UE} ping ${OPNET_ADDR}"
    info "clean up: ${LAB_PREFIX:+LAB_PREFIX=$LAB_PREFIX }scripts/lab.sh down   (stops everything in the lab namespaces)"
    exit 0
  fi
  if ((rc != 0)) && [[ -n $WORK ]]; then
    for f in "$WORK"/portholed.log "$WORK"/porthole.log; do
      [[ -s $f ]] || continue
      printf '\n--- last lines of %s ---\n' "$f" >&2
      tail -n 20 "$f" >&2
    done
  fi
  heading "teardown"
  # client first (it restores ue's routes), then the concentrator
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do kill_pid_tree "${PIDS[i]}" 5; done
  ((LAB_STARTED)) && bash "$SCRIPTS/lab.sh" down | sed 's/^/   /'
  [[ -n $WORK ]] && rm -rf "$WORK"
  if ((rc == 0)); then printf '\n\033[1mdemo finished: all steps passed\033[0m\n'
  else printf '\n\033[1mdemo FAILED (exit %d)\033[0m\n' "$rc" >&2; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# wait_log FILE PATTERN SECONDS PID
wait_log() {
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    grep -qE -- "$2" "$1" 2>/dev/null && return 0
    kill -0 "$4" 2>/dev/null || { grep -qE -- "$2" "$1" 2>/dev/null; return; }
    sleep 0.1
  done
  return 1
}

# ------------------------------------------------------------------------------ 0. checks
heading "0. prerequisites"
lab_require_root
if ((BUILD)); then
  if [[ -x $SCRIPTS/install-deps.sh ]] || [[ -f $SCRIPTS/install-deps.sh ]]; then
    info "running scripts/install-deps.sh"
    bash "$SCRIPTS/install-deps.sh" || die "scripts/install-deps.sh failed"
  else
    info "scripts/install-deps.sh not present, assuming dependencies are installed"
  fi
fi
lab_require_tools "${LAB_TOOLS[@]}" cmake
good "root, tools present"

# ------------------------------------------------------------------------------ 1. build
heading "1. build (Release, $BUILD_DIR)"
if ((BUILD)); then
  cmake -S "$REPO" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release >"$BUILD_DIR.configure.log" 2>&1 ||
    { tail -n 30 "$BUILD_DIR.configure.log" >&2; die "cmake configure failed (log: $BUILD_DIR.configure.log)"; }
  cmake --build "$BUILD_DIR" --target porthole portholed 2>&1 | tail -n 3 | sed 's/^/   /'
  ((PIPESTATUS[0] == 0)) || die "build failed"
  rm -f "$BUILD_DIR.configure.log"
else
  info "--no-build: using existing binaries"
fi
[[ -x $PORTHOLE_BIN && -x $PORTHOLED_BIN ]] || die "binaries not found: $PORTHOLE_BIN $PORTHOLED_BIN"
good "$PORTHOLE_BIN"
good "$PORTHOLED_BIN"
WORK=$(mktemp -d /tmp/porthole-demo.XXXXXX)

# ------------------------------------------------------------------------------ 2. lab
heading "2. lab: ue -> fw -> conc -> opnet; fw only lets TCP to $CONC_ADDR:443 through"
if lab_any_ns_exists; then
  die "a lab '${LAB_PREFIX:-default}' already exists; remove it first: ${LAB_PREFIX:+LAB_PREFIX=$LAB_PREFIX }scripts/lab.sh down"
fi
LAB_STARTED=1
bash "$SCRIPTS/lab.sh" up | sed 's/^/   /'
((PIPESTATUS[0] == 0)) || die "lab.sh up failed (or its firewall check failed)"

# ------------------------------------------------------------------------------ 3. pki
heading "3. lab PKI ($PKI)"
bash "$SCRIPTS/pki.sh" "$PKI" | sed 's/^/   /'
((PIPESTATUS[0] == 0)) || die "pki.sh failed"

# ------------------------------------------------------------------------------ 4. start
heading "4. start portholed (in $NS_CONC) and porthole (in $NS_UE)"
ip netns exec "$NS_CONC" "$PORTHOLED_BIN" --listen "$CONC_ADDR:443" --cert "$PKI/server.pem" \
  --key "$PKI/server.key" --client-ca "$PKI/ca.pem" --pool 100.64.0.0/24 --nat-egress conc-op \
  --tun-name portholed0 --control-socket "$WORK/portholed.sock" </dev/null >"$WORK/portholed.log" 2>&1 &
PORTHOLED_PID=$!
PIDS+=("$PORTHOLED_PID")
wait_log "$WORK/portholed.log" "listening on" 15 "$PORTHOLED_PID" || die "portholed did not report 'listening on' within 15 s"
good "portholed pid $PORTHOLED_PID: $(grep -m1 'listening on' "$WORK/portholed.log")"

before_tls=$(fw_counter tls_up)
before_drop_icmp=$(fw_counter_packets drop_icmp)
before_drop_udp=$(fw_counter_packets drop_udp)
before_drop_tcp=$(fw_counter_packets drop_tcp)

ip netns exec "$NS_UE" "$PORTHOLE_BIN" connect --server "$CONC_ADDR:443" --ca "$PKI/ca.pem" \
  --cert "$PKI/ue1.pem" --key "$PKI/ue1.key" --tun-name porthole0 </dev/null >"$WORK/porthole.log" 2>&1 &
PORTHOLE_PID=$!
PIDS+=("$PORTHOLE_PID")
wait_log "$WORK/porthole.log" "tunnel up" 15 "$PORTHOLE_PID" || die "porthole did not report 'tunnel up' within 15 s"
good "porthole pid $PORTHOLE_PID: $(grep -m1 'tunnel up' "$WORK/porthole.log")"
info "ue routes now:"
ip -n "$NS_UE" route show | sed 's/^/     /'

# ------------------------------------------------------------------------------ 5. ICMP
heading "5. ping $OPNET_ADDR from ue (through the tunnel)"
if out=$(timeout 15 ip netns exec "$NS_UE" ping -n -c 5 -i 0.2 -W 2 "$OPNET_ADDR" 2>&1); then
  grep -E 'packet loss|rtt' <<<"$out" | sed 's/^/   /'
  good "ICMP echo through the tunnel"
else
  printf '%s\n' "$out" | tail -n 3 | sed 's/^/   /'
  bad "ping through the tunnel failed"
fi

# ------------------------------------------------------------------------------ 6. UDP
heading "6. UDP echo to $OPNET_ADDR:7"
payload="hello over UDP via TLS/443 $RANDOM"
if reply=$(udp_echo "$NS_UE" "$OPNET_ADDR" 7 "$payload"); then good "tunneled UDP: sent '$payload', got '$reply'"
else bad "tunneled UDP echo: no (or wrong) reply '$reply'"; fi
b=$(fw_counter_packets drop_udp)
if udp_echo "$NS_UE" "$OPNET_ADDR" 7 direct ",so-bindtodevice=ue-fw" >/dev/null; then
  bad "direct UDP (bypassing the tunnel via ue-fw) was answered - firewall not restrictive?"
else
  good "direct UDP (socket bound to ue-fw, bypassing the tunnel): no reply, fw drop_udp $b -> $(fw_counter_packets drop_udp)"
fi

# ------------------------------------------------------------------------------ 7. TCP
heading "7. TCP: $SIZE_MB MB to $OPNET_ADDR:5001, which answers with the sha256 it received"
head -c "${SIZE_MB}M" /dev/urandom >"$WORK/payload"
bytes=$(stat -c %s "$WORK/payload")
want=$(sha256sum <"$WORK/payload" | awk '{print $1}')
t0=$(now_s)
got=$(timeout 300 ip netns exec "$NS_UE" socat -t 30 -T 60 - "TCP4:$OPNET_ADDR:5001,connect-timeout=5" \
  <"$WORK/payload" 2>/dev/null | awk '{print $1}')
t1=$(now_s)
secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
info "sent     sha256 $want"
info "received sha256 ${got:-<none>}"
if [[ $got == "$want" ]]; then good "$bytes bytes in ${secs} s = $(mb_per_s "$bytes" "$secs") MB/s, sha256 matches"
else bad "TCP transfer: sha256 mismatch or no answer"; fi
rm -f "$WORK/payload"

# ------------------------------------------------------------------------------ 8. counters
heading "8. firewall counters in $NS_FW during the demo"
after_tls=$(fw_counter tls_up)
d_pk=$((${after_tls%% *} - ${before_tls%% *}))
d_by=$((${after_tls##* } - ${before_tls##* }))
d_icmp=$(($(fw_counter_packets drop_icmp) - before_drop_icmp))
d_tcp=$(($(fw_counter_packets drop_tcp) - before_drop_tcp))
d_udp=$(($(fw_counter_packets drop_udp) - before_drop_udp))
info "$(printf '%-42s %8d packets %12d bytes' 'accepted TCP/443 ue->conc (tunnel)' "$d_pk" "$d_by")"
info "$(printf '%-42s %8d packets' 'dropped ICMP from ue' "$d_icmp")"
info "$(printf '%-42s %8d packets (the deliberate direct probe)' 'dropped UDP from ue' "$d_udp")"
info "$(printf '%-42s %8d packets' 'dropped other TCP from ue' "$d_tcp")"
if ((d_by >= bytes && d_icmp == 0 && d_tcp == 0 && d_udp <= 1)); then
  good "ICMP, UDP and TCP/5001 reached opnet; only TCP/443 crossed the firewall"
else
  bad "unexpected firewall counters"
fi

((FAILED == 0)) || exit 1
exit 0
