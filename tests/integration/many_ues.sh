#!/usr/bin/env bash
# 200 simulated UEs (porthole-uesim, each with its own minted client certificate) and one real
# porthole client, all in the ue namespace, against one portholed with a /22 pool:
#   - all 200 simulated sessions connect at once and get 200 distinct addresses;
#   - each pings 198.18.3.2 (opnet) 3 times from its own address: every reply arrives on the
#     session that sent the request, and no packet reaches a session it is not addressed to;
#   - meanwhile the real client's ping through its TUN device still works (5/5), before, during
#     and after the simulated UEs;
#   - portholed runs two event loops (--workers 2): the sessions are spread over both (session
#     ids carry their loop: odd ids on the first, even on the second), and replies that the
#     kernel puts on the other loop's TUN queue are handed over, never lost or misdelivered.
# Env PORTHOLED_WORKERS overrides the 2 (scripts/test.sh runs this test once more with a
# ThreadSanitizer build of portholed).
# Only one real client: the lab has one UE namespace, and two full-tunnel clients cannot share
# its routing table (both would install 0/1 + 128/1); the simulated UEs need no routes.
# Env: UESIM_BIN (porthole-uesim), SIM_SESSIONS (default 200), SIM_PROBES (default 3).
# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_binaries
[[ -n ${UESIM_BIN:-} && -x $UESIM_BIN ]] || fail "UESIM_BIN not set or not executable ('${UESIM_BIN:-}')"
SIM_SESSIONS=${SIM_SESSIONS:-200}
SIM_PROBES=${SIM_PROBES:-3}
# shellcheck disable=SC2034 # used by start_portholed in lib.sh
POOL=100.64.0.0/22 # room for 1021 UEs

# field LINE KEY: the value of KEY=... in uesim's machine-readable line.
field() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<"$1"; }

t_setup
make_pki
WORKERS=${PORTHOLED_WORKERS:-2}
start_portholed --workers "$WORKERS"
check "portholed runs $WORKERS event loops" grep -q "$WORKERS event loops)" "$PORTHOLED_LOG"
start_porthole ue1
real_addr=$(ue_tun_addr)
log "real client has $real_addr"

log "real client ping before the simulated UEs:"
ping_summary "$NS_UE" "$OPNET_ADDR" 5
check "real client ping before: 5/5 (got $PING_RX)" test "$PING_RX" -eq 5

log "starting $SIM_SESSIONS simulated UEs (hold 15 s, $SIM_PROBES probes each to $OPNET_ADDR)"
bg_in "$NS_UE" "$T_TMP/uesim.log" "$UESIM_BIN" --server "$CONC_ADDR:443" --ca "$PKI/ca.pem" \
  --mint-ca-cert "$PKI/ca.pem" --mint-ca-key "$PKI/ca.key" --identity-prefix sim \
  --sessions "$SIM_SESSIONS" --connect-rate 1000 --probe "$OPNET_ADDR" --probes "$SIM_PROBES" \
  --hold 15 --duration 60
SIM_PID=$LAST_PID
wait_for_log "$T_TMP/uesim.log" "all $SIM_SESSIONS sessions up|FAIL" 30 "$SIM_PID"
grep -q "all $SIM_SESSIONS sessions up" "$T_TMP/uesim.log" || { cat "$T_TMP/uesim.log" >&2; fail "the simulated UEs did not all come up"; }
n_assigned=$(grep -c "\[sim-[0-9]*\]: assigned" "$PORTHOLED_LOG")
check "portholed logged $SIM_SESSIONS assignments for sim-* (got $n_assigned)" test "$n_assigned" -eq "$SIM_SESSIONS"
if [[ $WORKERS == 2 ]]; then
  n_odd=$(grep -cE "session [0-9]*[13579] \[sim-[0-9]*\]: assigned" "$PORTHOLED_LOG")
  n_even=$((n_assigned - n_odd))
  check "sessions on both event loops (first $n_odd, second $n_even)" \
    test "$n_odd" -ge $((SIM_SESSIONS / 2 - 2)) -a "$n_even" -ge $((SIM_SESSIONS / 2 - 2))
fi

log "real client ping while $SIM_SESSIONS simulated UEs are up:"
ping_summary "$NS_UE" "$OPNET_ADDR" 5
check "real client ping during: 5/5 (got $PING_RX)" test "$PING_RX" -eq 5
check "the real client's session is still there" kill -0 "$PORTHOLE_PID"

wait_exit "$SIM_PID" 60 || fail "uesim did not finish within 60 s"
sim_rc=$WAIT_RC
sed 's/^/    /' "$T_TMP/uesim.log"
line=$(grep -E '^uesim: sessions=' "$T_TMP/uesim.log" | tail -n 1)
check "uesim exit status 0 (got $sim_rc)" test "$sim_rc" -eq 0
check "all $SIM_SESSIONS connected (got $(field "$line" connected))" test "$(field "$line" connected)" = "$SIM_SESSIONS"
check "$SIM_SESSIONS distinct addresses (got $(field "$line" assigned_distinct))" test "$(field "$line" assigned_distinct)" = "$SIM_SESSIONS"
want=$((SIM_SESSIONS * SIM_PROBES))
check "all $want probe replies arrived (got $(field "$line" replies))" test "$(field "$line" replies)" = "$want"
check "no packet misdelivered (got $(field "$line" misdelivered))" test "$(field "$line" misdelivered)" = 0
check "no reply on a foreign session (got $(field "$line" foreign_replies))" test "$(field "$line" foreign_replies)" = 0
check "all sessions survived the hold (still_up $(field "$line" still_up))" test "$(field "$line" still_up)" = "$SIM_SESSIONS"
check "the real client's address $real_addr was not handed to a simulated UE" \
  ! grep -qE "\[sim-[0-9]+\]: assigned $real_addr/" "$PORTHOLED_LOG"
log "figures: sessions=$SIM_SESSIONS handshake_per_s=$(field "$line" handshake_per_s) connect_s=$(field "$line" connect_s) replies=$(field "$line" replies)/$want"

log "real client ping after the simulated UEs left:"
ping_summary "$NS_UE" "$OPNET_ADDR" 5
check "real client ping after: 5/5 (got $PING_RX)" test "$PING_RX" -eq 5
check "portholed still running" kill -0 "$PORTHOLED_PID"
finish
