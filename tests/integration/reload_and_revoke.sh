#!/usr/bin/env bash
# shellcheck disable=SC2119
# The concentrator's life cycle under an operator's CA (scripts/porthole-ca):
#  - systemd notifications: READY=1 only once the listener accepts connections (a listener on
#    NOTIFY_SOCKET tries a connection the moment READY=1 arrives), STATUS=, WATCHDOG=1;
#  - privileges: after set-up only CAP_NET_ADMIN is left (effective, permitted, bounding), and
#    no_new_privs is set;
#  - SIGHUP with a re-issued server certificate: a new connection sees the new certificate
#    while ue1's ping keeps going over its existing session (no reconnect); RELOADING=1/READY=1;
#  - a bad reload (key does not match the certificate) is refused with one line, the old
#    configuration keeps running;
#  - `porthole-ca revoke ue2` + SIGHUP: ue2's new connection is refused with "revoked".
# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_binaries
require_tool python3
t_setup
CA_SH=$SCRIPTS_DIR/porthole-ca

# --- the operator's CA: the lab helpers read $PKI/{ca,server,ue1,...}.{pem,key} ---
PKI=$T_TMP/ca
bash "$CA_SH" init "$PKI" --name "Test Operator CA" >"$T_TMP/ca.out" 2>&1 || { cat "$T_TMP/ca.out" >&2; fail "porthole-ca init failed"; }
for step in "server $PKI server --ip $CONC_ADDR" "ue $PKI ue1" "ue $PKI ue2"; do
  # shellcheck disable=SC2086
  bash "$CA_SH" $step >>"$T_TMP/ca.out" 2>&1 || { cat "$T_TMP/ca.out" >&2; fail "porthole-ca $step failed"; }
done
check "porthole-ca: keys are 0600" test "$(stat -c %a "$PKI/ue1.key")" = 600
check "porthole-ca: list shows 3 valid certificates" test "$(bash "$CA_SH" list "$PKI" | grep -c '^valid')" -eq 3
check "porthole-ca: a second ue1 is refused while one is valid" ! bash "$CA_SH" ue "$PKI" ue1

# --- a fake systemd in conc: on READY=1 it connects to the listener at once ---
start_fake_systemd --probe-on-ready "$CONC_ADDR"

export NOTIFY_SOCKET=$NOTIFY_SOCK WATCHDOG_USEC=1000000
start_portholed --crl "$PKI/crl.pem"
unset NOTIFY_SOCKET WATCHDOG_USEC
wait_for_log "$NOTIFY_LOG" " probe: " 10 || fail "no READY=1 within 10 s of 'listening on'"
log "notify: $(tr '\n' ' ' <"$NOTIFY_LOG")"
check "READY=1 arrived" test "$(notify_count READY=1)" -ge 1
check "the listener accepted a connection the moment READY=1 arrived" test "$(notify_count "probe: connect ok")" -eq 1
wait_for_log "$NOTIFY_LOG" " WATCHDOG=1$" 5 || true
check "WATCHDOG=1 sent (WATCHDOG_USEC set)" test "$(notify_count WATCHDOG=1)" -ge 1
check "STATUS= sent" grep -q " STATUS=0 session" "$NOTIFY_LOG"

# --- privileges after set-up ---
st=/proc/$PORTHOLED_PID/status
log "portholed: $(grep -m1 'running as' "$PORTHOLED_LOG")"
log "portholed: $(grep -E '^(CapEff|CapPrm|CapBnd|CapAmb|NoNewPrivs)' "$st" | tr -s '\t\n' '  ')"
check "portholed: effective capabilities = CAP_NET_ADMIN only" grep -qE '^CapEff:[[:space:]]+0000000000001000$' "$st"
check "portholed: permitted capabilities = CAP_NET_ADMIN only" grep -qE '^CapPrm:[[:space:]]+0000000000001000$' "$st"
check "portholed: bounding set = CAP_NET_ADMIN only" grep -qE '^CapBnd:[[:space:]]+0000000000001000$' "$st"
check "portholed: no_new_privs set" grep -qE '^NoNewPrivs:[[:space:]]+1$' "$st"
check "portholed logs what it runs as" grep -q "running as uid=0.* caps=cap_net_admin" "$PORTHOLED_LOG"

# --- ue1 up, pinging through the reloads ---
start_porthole ue1
check "session lines carry sid= and identity=" grep -qE "session [0-9]+ \[ue1\]: assigned .* sid=[0-9]+ identity=ue1" "$PORTHOLED_LOG"
wait_for_log "$NOTIFY_LOG" " STATUS=1 session" 5 || true
check "STATUS= follows the session count" grep -q " STATUS=1 session" "$NOTIFY_LOG"
start_pinger "$NS_UE" "$OPNET_ADDR" 0.2 60

server_serial() {
  timeout 10 ip netns exec "$NS_UE" openssl s_client -connect "$CONC_ADDR:443" -CAfile "$PKI/ca.pem" \
    </dev/null 2>/dev/null | openssl x509 -noout -serial 2>/dev/null | cut -d= -f2
}
serial0=$(server_serial)
check "s_client sees the server certificate (serial ${serial0:-none})" test -n "$serial0"

# Re-issue the server certificate at the same path, reload.
bash "$CA_SH" revoke "$PKI" server >>"$T_TMP/ca.out" 2>&1 || fail "porthole-ca revoke server failed"
bash "$CA_SH" server "$PKI" server --ip "$CONC_ADDR" >>"$T_TMP/ca.out" 2>&1 || fail "re-issuing the server certificate failed"
kill -HUP "$PORTHOLED_PID"
wait_for_log "$PORTHOLED_LOG" "reload: " 10 "$PORTHOLED_PID" || fail "no 'reload:' line after SIGHUP"
log "portholed: $(grep -m1 'reload: ' "$PORTHOLED_LOG")"
check "RELOADING=1 then READY=1 again" test "$(notify_count RELOADING=1)" -ge 1
check "READY=1 twice (start, after the reload)" test "$(notify_count READY=1)" -eq 2
serial1=$(server_serial)
check "a new connection sees the new certificate ($serial0 -> ${serial1:-none})" test -n "$serial1" -a "$serial1" != "$serial0"

# A bad configuration: the key no longer matches the certificate.
cp "$PKI/server.key" "$T_TMP/server.key.good"
cp "$PKI/ue2.key" "$PKI/server.key"
kill -HUP "$PORTHOLED_PID"
wait_for_log "$PORTHOLED_LOG" "reload refused: " 10 "$PORTHOLED_PID" || fail "no 'reload refused' line for a bad key"
log "portholed: $(grep -m1 'reload refused: ' "$PORTHOLED_LOG")"
check "the refusal names the mismatch" grep -q "reload refused: key file .* does not match" "$PORTHOLED_LOG"
check "portholed still running after a refused reload" kill -0 "$PORTHOLED_PID"
check "the old certificate is still served" test "$(server_serial)" = "$serial1"
cp "$T_TMP/server.key.good" "$PKI/server.key"

sleep 2
t_stop=$(now_s)
stop_pid "$PINGER_PID" INT 5 || true
rx=$(grep -c 'bytes from' "$PINGER_LOG")
last_seq=$(sed -n 's/.*bytes from .*icmp_seq=\([0-9]*\).*/\1/p' "$PINGER_LOG" | tail -n 1)
lost=$((${last_seq:-0} - rx))
log "ue1 ping every 0.2 s during the reloads: $rx replies up to icmp_seq ${last_seq:-none}, $lost lost"
check "ue1's ping kept going through both reloads (>= 10 replies, at most 1 lost)" test "$rx" -ge 10 -a "$lost" -le 1
check "ue1's last reply within 1 s of stopping" awk -v a="$(pinger_last_reply "$PINGER_LOG")" -v b="$t_stop" 'BEGIN { exit !(b - a < 1.0) }'
check "ue1 did not reconnect (one assignment in portholed's log)" test "$(log_count "$PORTHOLED_LOG" '\[ue1\]: (assigned|resumed)')" -eq 1
check "porthole ue1 still running" kill -0 "$PORTHOLE_PID"
stop_pid "$PORTHOLE_PID" INT 10 || fail "porthole did not exit within 10 s of SIGINT"

# --- revoke ue2, reload: its new connection is refused ---
bash "$CA_SH" revoke "$PKI" ue2 >>"$T_TMP/ca.out" 2>&1 || fail "porthole-ca revoke ue2 failed"
kill -HUP "$PORTHOLED_PID"
wait_for_log_count "$PORTHOLED_LOG" "reload: " 2 10 "$PORTHOLED_PID" || fail "no second 'reload:' line"
porthole_cmd ue2
timeout 20 ip netns exec "$NS_UE" "${PORTHOLE_CMD[@]}" </dev/null >"$T_TMP/client-ue2.out" 2>"$T_TMP/client-ue2.log"
rc=$?
err=$(grep '^porthole: error: ' "$T_TMP/client-ue2.log" | head -n 1)
log "ue2 (revoked): rc $rc: ${err:-<no error line>}"
check "revoked ue2: client exits non-zero" test "$rc" -ne 0 -a "$rc" -ne 124
check "revoked ue2: the client says its certificate is revoked" grep -q "authentication refused: .*revoked" <<<"$err"
check "revoked ue2: portholed logs the revocation" grep -qE "client certificate rejected: the client certificate is revoked.*CN=ue2" "$PORTHOLED_LOG"
log "portholed: $(grep -m1 'is revoked' "$PORTHOLED_LOG")"
start_porthole ue1
check "ue1 (not revoked) still gets through" ping_ok "$NS_UE" "$OPNET_ADDR" 2

stop_pid "$PORTHOLED_PID" TERM 10 || fail "portholed did not exit within 10 s of SIGTERM"
check "STOPPING=1 at shutdown" test "$(notify_count STOPPING=1)" -ge 1
check "portholed exited 0 (rc $WAIT_RC)" test "$WAIT_RC" -eq 0
finish
