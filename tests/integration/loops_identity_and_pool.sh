#!/usr/bin/env bash
# Configuration across event loops (portholed --workers 2), where the loops share the address
# pools and the identities under one lock:
#   1. one identity, 20 connections in quick succession (porthole-uesim --cert: a shared
#      identity): new connections go to the loops in turn, so each replaces a session on the
#      other loop. Exactly one session survives, 19 are replaced, the survivor has the identity's
#      address, and portholectl status counts the 19;
#   2. a pool with 5 UE addresses and 8 UEs: 5 configured, 3 refused with "no free IPv4
#      address" (a refusal closes its connection while the pool is being handed out: no
#      deadlock, the control socket still answers), and portholed keeps running.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_binaries
[[ -n ${UESIM_BIN:-} && -x $UESIM_BIN ]] || fail "UESIM_BIN not set or not executable ('${UESIM_BIN:-}')"
t_setup
make_pki

log "1. one identity, 20 connections, two event loops"
start_portholed --workers 2
bg_in "$NS_UE" "$T_TMP/uesim-shared.log" "$UESIM_BIN" --server "$CONC_ADDR:443" --ca "$PKI/ca.pem" \
  --cert "$PKI/ue1.pem" --key "$PKI/ue1.key" --sessions 20 --connect-rate 200 --hold 3 --duration 30
SIM_PID=$LAST_PID
wait_exit "$SIM_PID" 40 || fail "uesim did not finish within 40 s"
sed 's/^/    /' "$T_TMP/uesim-shared.log"
check "uesim (shared identity) passed: one session left, the others replaced (exit $WAIT_RC)" test "$WAIT_RC" -eq 0
n_replaced=$(grep -c "\[ue1\]: ended: closed: replaced" "$PORTHOLED_LOG")
check "portholed closed 19 sessions as replaced (got $n_replaced)" test "$n_replaced" -eq 19
n_loop1=$(grep -cE "session [0-9]*[02468] \[ue1\]: (assigned|resumed)" "$PORTHOLED_LOG")
check "sessions of the identity were configured on the second loop too (got $n_loop1)" test "$n_loop1" -gt 0
addrs=$(grep -oE "\[ue1\]: (assigned|resumed) [0-9.]+" "$PORTHOLED_LOG" | awk '{ print $3 }' | sort -u)
check "the identity kept one address throughout (got: $(tr '\n' ' ' <<<"$addrs"))" test "$(wc -l <<<"$addrs")" -eq 1
portholectl_cmd status >"$T_TMP/status.txt" || fail "portholectl status failed"
status=$(cat "$T_TMP/status.txt")
check "status counts 19 replaced" grep -q "replaced 19" <<<"$status"
check "portholed still running" kill -0 "$PORTHOLED_PID"
stop_pid "$PORTHOLED_PID" TERM 15 || fail "portholed did not stop on SIGTERM"
check "portholed exited 0 on SIGTERM (got $WAIT_RC)" test "$WAIT_RC" -eq 0

log "2. 8 UEs, 5 addresses"
# shellcheck disable=SC2034 # used by start_portholed in lib.sh
POOL=100.64.0.0/29 # gateway .1, UEs .2 to .6
start_portholed --workers 2
bg_in "$NS_UE" "$T_TMP/uesim-pool.log" "$UESIM_BIN" --server "$CONC_ADDR:443" --ca "$PKI/ca.pem" \
  --mint-ca-cert "$PKI/ca.pem" --mint-ca-key "$PKI/ca.key" --identity-prefix sim \
  --sessions 8 --connect-rate 100 --hold 3 --duration 30
SIM_PID=$LAST_PID
wait_exit "$SIM_PID" 40 || fail "uesim did not finish within 40 s"
sed 's/^/    /' "$T_TMP/uesim-pool.log"
n_assigned=$(grep -cE "\[sim-[0-9]+\]: assigned" "$PORTHOLED_LOG")
n_refused=$(grep -c "no free IPv4 address" "$PORTHOLED_LOG")
check "5 UEs configured (got $n_assigned)" test "$n_assigned" -eq 5
check "3 UEs refused: no free IPv4 address (got $n_refused)" test "$n_refused" -eq 3
portholectl_cmd status >"$T_TMP/status.txt" || fail "portholectl status failed after the refusals"
status=$(cat "$T_TMP/status.txt")
sed 's/^/    /' "$T_TMP/status.txt"
check "status counts 3 pool_exhausted" grep -q "pool_exhausted 3" <<<"$status"
check "portholed still running" kill -0 "$PORTHOLED_PID"
finish
