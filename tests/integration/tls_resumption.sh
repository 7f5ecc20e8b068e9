#!/usr/bin/env bash
# shellcheck disable=SC2119
# TLS 1.3 session resumption between the real programs, under an operator's CA
# (scripts/porthole-ca, with a CRL):
#  - ue1 connects (a full handshake) and receives a session ticket; its TCP connection is then
#    killed in conc (`ss -K`, the concentrator's socket is aborted and the UE gets a reset): the
#    client reconnects offering the ticket, both sides log the handshake as resumed, the
#    concentrator identifies ue1 from the ticket, and the ping goes through again;
#  - portholectl status counts TLS handshakes: full 1, resumed 1;
#  - 20 simulated UEs (porthole-uesim --resume) connect, close, reconnect with their tickets:
#    all 20 resumed, configured again, their probes answered;
#  - ue1 is revoked (`porthole-ca revoke` + SIGHUP: a new CRL and a new TLS context, whose
#    session cache is empty): the next cut makes ue1 reconnect with its old ticket, which the
#    new context does not know, so the handshake is a full one, the certificate is checked against the new CRL and refused, and
#    the client exits with "revoked".
# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_binaries
require_tool ss iproute2
[[ -n ${UESIM_BIN:-} && -x $UESIM_BIN ]] || fail "UESIM_BIN not set or not executable ('${UESIM_BIN:-}')"
t_setup
CA_SH=$SCRIPTS_DIR/porthole-ca

# field LINE KEY: the value of KEY=... in uesim's machine-readable line.
field() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<"$1"; }
# cut_ue: abort the UE's established :443 connections in conc (the kernel resets them).
cut_ue() { ip netns exec "$NS_CONC" ss -K -t state established "( sport = :443 and dst $UE_ADDR )" >/dev/null 2>&1; }
# resumed_ue1: concentrator lines for ue1's resumed TLS handshakes.
resumed_ue1() { log_count "$PORTHOLED_LOG" "TLS up from .*, resumed\), identity 'ue1'"; }

PKI=$T_TMP/ca
bash "$CA_SH" init "$PKI" --name "Test Operator CA" >"$T_TMP/ca.out" 2>&1 || { cat "$T_TMP/ca.out" >&2; fail "porthole-ca init failed"; }
for step in "server $PKI server --ip $CONC_ADDR" "ue $PKI ue1"; do
  # shellcheck disable=SC2086
  bash "$CA_SH" $step >>"$T_TMP/ca.out" 2>&1 || { cat "$T_TMP/ca.out" >&2; fail "porthole-ca $step failed"; }
done

start_portholed --crl "$PKI/crl.pem" --handshake-threads 2
start_porthole ue1 --reconnect-max 2
check "ping through the tunnel (full handshake)" ping_ok "$NS_UE" "$OPNET_ADDR" 2
check "the first handshake was a full one" grep -qE "TLS up from .*\(TLSv1\.3 [A-Z0-9_]+\), identity 'ue1'" "$PORTHOLED_LOG"

# --- cut: the reconnect is resumed ---
cut_ue || fail "ss -K in conc failed (kernel without CONFIG_INET_DIAG_DESTROY?)"
t_cut=$(now_s)
wait_for_log "$PORTHOLE_LOG" "tunnel up again" 15 "$PORTHOLE_PID" || fail "no 'tunnel up again' within 15 s of the cut"
log "client: $(grep -m1 'connection lost' "$PORTHOLE_LOG")"
log "client: $(grep -m1 'tunnel up again' "$PORTHOLE_LOG") ($(secs_since "$t_cut") s after the cut)"
log "portholed: $(grep -E "TLS up from .*identity 'ue1'" "$PORTHOLED_LOG" | tail -n 1)"
check "the client logs the reconnect as resumed" grep -qE "tunnel up again: .*, resumed;" "$PORTHOLE_LOG"
check "portholed logs one resumed TLS handshake of ue1 (got $(resumed_ue1))" test "$(resumed_ue1)" -eq 1
check "portholed identified ue1 from the ticket and assigned its address again" \
  grep -qE "session [0-9]+ \[ue1\]: (assigned|resumed) $FIRST_UE_ADDR/" <<<"$(grep -E 'session [0-9]+ \[ue1\]: (assigned|resumed)' "$PORTHOLED_LOG" | tail -n 1)"
check "ping through the tunnel after the resumed reconnect" ping_ok "$NS_UE" "$OPNET_ADDR" 3
status=$(portholectl_cmd status)
log "portholectl status: $(grep '^tls' <<<"$status")"
check "portholectl status: TLS handshakes full 1, resumed 1" grep -qE "^tls +full 1, resumed 1;" <<<"$status"
metrics_json=$(portholectl_cmd status --json 2>/dev/null || true)
[[ -n $metrics_json ]] && log "status json tls_handshakes: $(jq -c .tls_handshakes <<<"$metrics_json" 2>/dev/null)"

# --- simulated UEs: close and reconnect each with its ticket ---
bg_in "$NS_UE" "$T_TMP/uesim.log" "$UESIM_BIN" --server "$CONC_ADDR:443" --ca "$PKI/ca.pem" \
  --mint-ca-cert "$PKI/ca.pem" --mint-ca-key "$PKI/ca.key" --identity-prefix sim \
  --sessions 20 --connect-rate 200 --probe "$OPNET_ADDR" --probes 2 --resume \
  --cpu-pid "$PORTHOLED_PID" --duration 40
SIM_PID=$LAST_PID
wait_exit "$SIM_PID" 45 || fail "uesim did not finish within 45 s"
sim_rc=$WAIT_RC
sed 's/^/    /' "$T_TMP/uesim.log"
line=$(grep -E '^uesim: sessions=' "$T_TMP/uesim.log" | tail -n 1)
check "uesim --resume exit status 0 (got $sim_rc)" test "$sim_rc" -eq 0
check "uesim: 20 reconnected (got $(field "$line" reconnected))" test "$(field "$line" reconnected)" = 20
check "uesim: 20 resumed (got $(field "$line" resumed))" test "$(field "$line" resumed)" = 20
check "uesim: all 40 probe replies after resuming (got $(field "$line" replies))" test "$(field "$line" replies)" = 40
check "uesim: resume_per_s reported (got $(field "$line" resume_per_s))" test -n "$(field "$line" resume_per_s)"
n_resumed_sim=$(log_count "$PORTHOLED_LOG" "TLS up from .*, resumed\), identity 'sim-[0-9]+'")
check "portholed logged 20 resumed handshakes of sim-* (got $n_resumed_sim)" test "$n_resumed_sim" -eq 20

# --- revoke ue1 + reload: the old ticket is useless, the full handshake refuses ue1 ---
bash "$CA_SH" revoke "$PKI" ue1 >>"$T_TMP/ca.out" 2>&1 || fail "porthole-ca revoke ue1 failed"
kill -HUP "$PORTHOLED_PID"
wait_for_log "$PORTHOLED_LOG" "reload: " 10 "$PORTHOLED_PID" || fail "no 'reload:' line after SIGHUP"
log "portholed: $(grep -m1 'reload: ' "$PORTHOLED_LOG" | sed 's/^info: //')"
check "the reload says the old tickets are dropped" grep -q "reload: .*old session tickets dropped" "$PORTHOLED_LOG"
check "ue1's running session survives the reload" ping_ok "$NS_UE" "$OPNET_ADDR" 2
cut_ue || fail "second ss -K failed"
wait_exit "$PORTHOLE_PID" 20 || fail "the revoked client did not exit within 20 s"
rc=$WAIT_RC
err=$(grep '^porthole: error: ' "$PORTHOLE_LOG" | head -n 1)
log "client after revocation: rc $rc: ${err:-<no error line>}"
log "portholed: $(grep -m1 'is revoked' "$PORTHOLED_LOG")"
check "revoked ue1: the client exits non-zero" test "$rc" -ne 0
check "revoked ue1: the client says its certificate is revoked" grep -q "authentication refused: .*revoked" <<<"$err"
check "revoked ue1: portholed refused it in a full handshake (revoked, CN=ue1)" \
  grep -qE "client certificate rejected: the client certificate is revoked.*CN=ue1" "$PORTHOLED_LOG"
check "revoked ue1: no further resumed handshake of ue1 (still $(resumed_ue1))" test "$(resumed_ue1)" -eq 1
check "revoked ue1: the client had offered its ticket, and it was not taken" \
  grep -q "the concentrator did not take our session ticket: full handshake" "$PORTHOLE_LOG"
check "portholed still running" kill -0 "$PORTHOLED_PID"
finish
