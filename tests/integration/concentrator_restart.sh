#!/usr/bin/env bash
# shellcheck disable=SC2119
# The concentrator goes away and comes back while a client is connected, once cleanly (SIGTERM)
# and once by a crash (SIGKILL, which leaves its nft table inet porthole behind). With a lease
# file the restarted concentrator gives ue1 the same address, the client reconnects on its own
# (same TUN, same address) and traffic resumes. Prints the reconnect times.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_binaries
t_setup
make_pki

LEASES=$T_TMP/leases
RECONNECT_MAX=2
BACK_LIMIT_S=20   # concentrator restarted -> client up again
D_ARGS=(--lease-file "$LEASES" --keepalive 5)

start_portholed "${D_ARGS[@]}"
start_porthole ue1 --reconnect-max "$RECONNECT_MAX"
addr0=$(ue_tun_addr)
ifindex0=$(ue_tun_ifindex)
check "ue TUN got $FIRST_UE_ADDR (got '${addr0:-none}')" test "$addr0" = "$FIRST_UE_ADDR"
check "ping through the tunnel works" ping_ok "$NS_UE" "$OPNET_ADDR" 2
# wait_lease: wait (5 s) until the lease file names ue1 with $addr0 (portholed writes it on its
# 0.5 s tick). Called through check.
# shellcheck disable=SC2317
wait_lease() {
  local i
  for ((i = 0; i < 50; i++)); do
    grep -qE "ue1.*$addr0|$addr0.*ue1" "$LEASES" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}
check "the lease file records ue1 -> $addr0 (within 5 s)" wait_lease

# round KIND(TERM|KILL): stop portholed with SIG<KIND>, start it again, wait for the client.
# Sets R_DOWN_S (signal -> client noticed), R_BACK_S (restart -> client up again),
# R_PING_S (restart -> first ping reply), R_ADDR (address afterwards).
round() {
  local sig=$1 t_sig t_start n_up i
  R_DOWN_S=none R_BACK_S=none R_PING_S=none R_ADDR=""
  n_up=$(log_count "$PORTHOLE_LOG" "tunnel up")
  local n_lost
  n_lost=$(log_count "$PORTHOLE_LOG" "connection lost")
  log "--- SIG$sig portholed (pid $PORTHOLED_PID)"
  t_sig=$(now_s)
  if [[ $sig == TERM ]]; then
    stop_pid "$PORTHOLED_PID" TERM 10 || fail "portholed did not exit within 10 s of SIGTERM"
    check "portholed exited 0 after SIGTERM (rc $WAIT_RC)" test "$WAIT_RC" -eq 0
    check "SIGTERM: portholed removed its nft table inet porthole" ! ip netns exec "$NS_CONC" nft list table inet porthole
  else
    check "before the crash: the lease file already records ue1 -> $addr0" wait_lease
    stop_pid "$PORTHOLED_PID" KILL 10 || fail "portholed did not die within 10 s of SIGKILL"
    check "SIGKILL: the crashed portholed left its nft table inet porthole behind" \
      ip netns exec "$NS_CONC" nft list table inet porthole
  fi
  if wait_for_log_count "$PORTHOLE_LOG" "connection lost" $((n_lost + 1)) 15 "$PORTHOLE_PID"; then
    R_DOWN_S=$(secs_since "$t_sig")
    log "client: $(grep 'connection lost' "$PORTHOLE_LOG" | tail -n 1)"
  fi
  check "client noticed the concentrator going away (after $R_DOWN_S s)" test "$R_DOWN_S" != none
  check "client keeps running while the concentrator is down" kill -0 "$PORTHOLE_PID"
  check "TUN $UE_TUN and its address stay while the concentrator is down" test "$(ue_tun_addr)" = "$addr0"
  # Waiting to reconnect must not spin: a dead socket left in the event loop kept it busy
  # until the next attempt (before the fix: 78 of 200 ticks after the SIGKILL, 0 after SIGTERM).
  local c0 c1
  c0=$(cpu_ticks "$PORTHOLE_PID")
  sleep 2
  c1=$(cpu_ticks "$PORTHOLE_PID")
  check "client idle while the concentrator is down ($((c1 - c0)) of 200 ticks in 2 s; < 20)" \
    test $((c1 - c0)) -lt 20

  start_portholed "${D_ARGS[@]}"
  t_start=$PORTHOLED_T0
  log "portholed: $(grep -m1 -E 'restored [0-9]+ lease' "$PORTHOLED_LOG" | sed 's/^info: //')"
  check "restarted portholed restored the lease from $LEASES" grep -qE 'restored [1-9][0-9]* lease' "$PORTHOLED_LOG"
  check "restarted portholed installed table inet porthole" ip netns exec "$NS_CONC" nft list table inet porthole
  check "exactly one table inet porthole in conc" \
    test "$(ip netns exec "$NS_CONC" nft list tables | grep -c '^table inet porthole$')" -eq 1

  if wait_for_log_count "$PORTHOLE_LOG" "tunnel up" $((n_up + 1)) "$BACK_LIMIT_S" "$PORTHOLE_PID"; then
    R_BACK_S=$(secs_since "$t_start")
    log "client: $(grep 'tunnel up' "$PORTHOLE_LOG" | tail -n 1)"
  fi
  check "client up again within $BACK_LIMIT_S s of the restart (took $R_BACK_S s)" test "$R_BACK_S" != none
  for ((i = 0; i < 100; i++)); do
    if ping_ok "$NS_UE" "$OPNET_ADDR" 1; then R_PING_S=$(secs_since "$t_start"); break; fi
  done
  check "ping through the tunnel resumes (after $R_PING_S s)" test "$R_PING_S" != none
  R_ADDR=$(ue_tun_addr)
  check "client has the same address ($addr0 -> ${R_ADDR:-none})" test "$R_ADDR" = "$addr0"
  check "client kept its TUN device (ifindex $ifindex0 -> $(ue_tun_ifindex))" test "$(ue_tun_ifindex)" = "$ifindex0"
  local line
  line=$(grep -E 'session [0-9]+ \[ue1\]: (assigned|resumed)' "$PORTHOLED_LOG" | tail -n 1 | sed 's/^info: //')
  log "concentrator: ${line:-<no assignment logged>}"
  check "the concentrator gave ue1 $addr0 again" grep -qE "(assigned|resumed) $addr0/" <<<"$line"
  check "ping -c 3 after SIG$sig round" ping_ok "$NS_UE" "$OPNET_ADDR" 3
}

round TERM
term=("$R_DOWN_S" "$R_BACK_S" "$R_PING_S" "$R_ADDR")
round KILL
kill_=("$R_DOWN_S" "$R_BACK_S" "$R_PING_S" "$R_ADDR")

check "portholed running" kill -0 "$PORTHOLED_PID"
check "porthole running" kill -0 "$PORTHOLE_PID"
log "RESULT: client reconnect-max ${RECONNECT_MAX} s; times in seconds          SIGTERM   SIGKILL"
log "$(printf 'RESULT: signal -> client logs "connection lost"      %9s %9s' "${term[0]}" "${kill_[0]}")"
log "$(printf 'RESULT: restart -> client "tunnel up (again)"        %9s %9s' "${term[1]}" "${kill_[1]}")"
log "$(printf 'RESULT: restart -> first ping reply                  %9s %9s' "${term[2]}" "${kill_[2]}")"
log "$(printf 'RESULT: address before %s, after                 %9s %9s' "$addr0" "${term[3]:-none}" "${kill_[3]:-none}")"
finish
