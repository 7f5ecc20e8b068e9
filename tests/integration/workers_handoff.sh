#!/usr/bin/env bash
# shellcheck disable=SC2119
# Two event loops (--workers 2), routed mode: traffic that the operator network starts towards a
# UE. The kernel puts a new flow on the TUN queue its hash picks, often that of the loop that does
# not own the UE's session; that loop hands the packet to the owner (WorkerInbox). Pings to the
# UE from 12 source addresses on opnet (12 flows), once while its session lives on the first loop
# and once on the second (the client reconnects; the primary gives connections to the loops in
# turn):
#   - every echo is answered, in both rounds;
#   - the two rounds' sessions are on different loops (session ids carry their loop);
#   - portholectl status counts packets handed from one loop to another (12 flows x 2 rounds:
#     with none handed over, every flow would have hashed to its owner's queue, 1 in 2^24).
# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_binaries
t_setup
make_pki
start_portholed --routed --workers 2
check "portholed runs 2 event loops" grep -q "2 event loops)" "$PORTHOLED_LOG"
SOURCES=$(seq 10 21)
for i in $SOURCES; do
  ip -n "$NS_OPNET" addr add "198.18.3.$i/24" dev op-conc || fail "cannot add 198.18.3.$i in opnet"
done

# echoes_from_sources ADDR: replies to 3 pings from each source address (12 x 3 sent).
echoes_from_sources() {
  local total=0 rx i
  for i in $SOURCES; do
    rx=$(timeout 12 ip netns exec "$NS_OPNET" ping -n -c 3 -i 0.2 -W 2 -I "198.18.3.$i" "$1" 2>/dev/null |
      sed -n 's/.* \([0-9]\+\) received.*/\1/p')
    total=$((total + ${rx:-0}))
  done
  echo "$total"
}

loops=()
for round in 1 2; do
  start_porthole ue1
  addr=$(ue_tun_addr)
  sid=$(grep -oE "session [0-9]+ \[ue1\]: (assigned|resumed)" "$PORTHOLED_LOG" | tail -n 1 | awk '{ print $2 }')
  [[ -n $sid && -n $addr ]] || fail "round $round: no session id or UE address in the logs"
  loop=$(((sid - 1) % 2))
  loops+=("$loop")
  log "round $round: session $sid on event loop $loop, UE address $addr"
  got=$(echoes_from_sources "$addr")
  check "round $round: opnet -> UE (session on loop $loop): 36 of 36 echoes answered (got $got)" test "$got" -eq 36
  ping_summary "$NS_UE" "$OPNET_ADDR" 3
  check "round $round: UE -> opnet still works (3/3, got $PING_RX)" test "$PING_RX" -eq 3
  stop_pid "$PORTHOLE_PID" INT 15 || fail "porthole did not stop on SIGINT"
  wait_for_log "$PORTHOLED_LOG" "session $sid \[ue1\]: ended" 10 "$PORTHOLED_PID" ||
    log "session $sid not logged closed within 10 s (the next connection replaces it)"
done
check "the two rounds' sessions were on different loops (${loops[*]})" test "${loops[0]}" != "${loops[1]}"

portholectl_cmd status >"$T_TMP/status.txt" || fail "portholectl status failed"
status=$(cat "$T_TMP/status.txt")
sed 's/^/    /' "$T_TMP/status.txt"
handed=$(sed -n 's/.*event loops *2 (\([0-9]*\) packets handed.*/\1/p' <<<"$status")
check "status: packets handed from one loop to another (got ${handed:-none})" test "${handed:-0}" -gt 0
check "portholed still running" kill -0 "$PORTHOLED_PID"
finish
