#!/usr/bin/env bash
# Anti-spoofing and UE isolation with simulated UEs (porthole-uesim):
#   - 20 sessions each send 4 echo requests to opnet from their own address (all answered: the
#     control) and 4 with a forged source (alternately the next session's address and 192.0.2.1):
#     zero forged-source replies anywhere, and portholed logs "dropped: spoofed 4" for each of
#     those sessions when they end;
#   - UE-to-UE (only when `portholed --help` offers --allow-ue-to-ue, i.e. the isolation feature
#     is built in): by default no echo request from one UE reaches another; with
#     --allow-ue-to-ue all of them do and are answered (proving the check can see traffic).
# Env: UESIM_BIN (porthole-uesim).
# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_binaries
[[ -n ${UESIM_BIN:-} && -x $UESIM_BIN ]] || fail "UESIM_BIN not set or not executable ('${UESIM_BIN:-}')"
N=20
PROBES=4

field() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<"$1"; }

# run_uesim NAME ARGS...: runs uesim in ue (bounded), sets SIM_RC and SIM_LINE.
run_uesim() {
  local name=$1
  shift
  timeout 60 ip netns exec "$NS_UE" "$UESIM_BIN" --server "$CONC_ADDR:443" --ca "$PKI/ca.pem" \
    --mint-ca-cert "$PKI/ca.pem" --mint-ca-key "$PKI/ca.key" --duration 45 "$@" \
    </dev/null >"$T_TMP/uesim-$name.log" 2>&1
  SIM_RC=$?
  sed 's/^/    /' "$T_TMP/uesim-$name.log"
  SIM_LINE=$(grep -E '^uesim: sessions=' "$T_TMP/uesim-$name.log" | tail -n 1)
}

t_setup
make_pki
start_portholed

log "== forged sources: $N sessions x ($PROBES genuine + $PROBES forged) echo requests to $OPNET_ADDR"
run_uesim spoof --identity-prefix spoof --sessions "$N" --probe "$OPNET_ADDR" --probes "$PROBES" \
  --spoof --probe-wait 2000
check "uesim --spoof exit status 0 (got $SIM_RC)" test "$SIM_RC" -eq 0
check "all $N connected" test "$(field "$SIM_LINE" connected)" = "$N"
check "genuine probes all answered ($(field "$SIM_LINE" replies)/$((N * PROBES)))" \
  test "$(field "$SIM_LINE" replies)" = "$((N * PROBES))"
check "forged probes sent: $(field "$SIM_LINE" spoof_sent)" test "$(field "$SIM_LINE" spoof_sent)" = "$((N * PROBES))"
check "zero replies to forged sources (got $(field "$SIM_LINE" spoof_replies))" \
  test "$(field "$SIM_LINE" spoof_replies)" = 0
check "nothing misdelivered" test "$(field "$SIM_LINE" misdelivered)" = 0

# The concentrator logs each session's drop counts when it ends (asynchronously to uesim's exit).
wait_for_log "$PORTHOLED_LOG" "\[spoof-$((N - 1))\]: ended" 10 "$PORTHOLED_PID" || true
ended=$(grep -cE "\[spoof-[0-9]+\]: ended" "$PORTHOLED_LOG")
spoofed_lines=$(grep -cE "\[spoof-[0-9]+\]: ended.*dropped: spoofed $PROBES\b" "$PORTHOLED_LOG")
spoofed_total=$(grep -oE "\[spoof-[0-9]+\]: ended.*dropped: spoofed [0-9]+" "$PORTHOLED_LOG" |
  awk '{ s += $NF } END { print s + 0 }')
log "portholed: $ended spoof-* sessions ended; 'dropped: spoofed $PROBES' on $spoofed_lines; total spoofed drops $spoofed_total"
grep -E "\[spoof-0\]: ended" "$PORTHOLED_LOG" | sed 's/^/    /'
check "every spoof-* session ended with 'dropped: spoofed $PROBES' ($spoofed_lines/$N)" test "$spoofed_lines" -eq "$N"
check "portholed's spoofed-drop total equals the forged probes sent ($spoofed_total)" test "$spoofed_total" -eq "$((N * PROBES))"

# --- UE-to-UE isolation: enable once portholed has the feature (it has when --help shows it).
if "$PORTHOLED_BIN" --help 2>/dev/null | grep -q -- "allow-ue-to-ue"; then
  log "== UE-to-UE, default (isolated): session i pings session i+1's inner address"
  run_uesim u2u-blocked --identity-prefix iso --sessions 10 --ue-to-ue --probes 3 --probe-wait 1500
  check "uesim --ue-to-ue (expect blocked) exit status 0 (got $SIM_RC)" test "$SIM_RC" -eq 0
  check "no UE-to-UE request arrived (got $(field "$SIM_LINE" ue2ue_arrived) of $(field "$SIM_LINE" ue2ue_sent))" \
    test "$(field "$SIM_LINE" ue2ue_arrived)" = 0
  check "no UE-to-UE reply (got $(field "$SIM_LINE" ue2ue_replies))" test "$(field "$SIM_LINE" ue2ue_replies)" = 0

  log "== UE-to-UE with portholed --allow-ue-to-ue (control: the check does see traffic)"
  stop_pid "$PORTHOLED_PID" TERM 10 || fail "portholed did not stop"
  start_portholed --allow-ue-to-ue
  run_uesim u2u-allowed --identity-prefix open --sessions 10 --ue-to-ue --probes 3 \
    --expect-ue-to-ue allowed
  check "uesim --ue-to-ue --expect-ue-to-ue allowed exit status 0 (got $SIM_RC)" test "$SIM_RC" -eq 0
  check "all 30 UE-to-UE requests arrived (got $(field "$SIM_LINE" ue2ue_arrived))" test "$(field "$SIM_LINE" ue2ue_arrived)" = 30
  check "all 30 UE-to-UE replies came back (got $(field "$SIM_LINE" ue2ue_replies))" test "$(field "$SIM_LINE" ue2ue_replies)" = 30
else
  log "SKIP (part): UE-to-UE isolation: this portholed has no --allow-ue-to-ue yet"
fi

check "portholed still running" kill -0 "$PORTHOLED_PID"
finish
