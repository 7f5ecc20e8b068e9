#!/usr/bin/env bash
# portholectl and the metrics endpoint against a concentrator with two UEs: the real client (ue1)
# and a simulated UE (porthole-uesim with ue2's certificate; the lab has one UE namespace, and
# two full-tunnel clients cannot share its routes):
#   - `portholectl status` and `sessions` (tables and --json) show both, with identities, inner
#     addresses and outer endpoints; ue1's byte counters grow after a ping;
#   - a Prometheus scrape with curl from inside the conc namespace: counters non-zero after the
#     traffic, the queue-delay histogram well-formed (cumulative buckets, +Inf == _count);
#   - `portholectl kick ue1`: the client prints "closed by the operator" with the reason and
#     exits (it does not reconnect: a kick means "do not come back"); the session is gone from
#     `sessions`, and status counts it as kicked;
#   - unknown requests and identities get one-line errors.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_binaries
[[ -n ${UESIM_BIN:-} && -x $UESIM_BIN ]] || fail "UESIM_BIN not set or not executable ('${UESIM_BIN:-}')"
require_tool curl
require_tool jq

METRICS=$CONC_ADDR:9641

t_setup
make_pki
start_portholed --metrics-listen "$METRICS"
start_porthole ue1
ue1_addr=$(ue_tun_addr)

bg_in "$NS_UE" "$T_TMP/uesim.log" "$UESIM_BIN" --server "$CONC_ADDR:443" --ca "$PKI/ca.pem" \
  --cert "$PKI/ue2.pem" --key "$PKI/ue2.key" --sessions 1 --probe "$OPNET_ADDR" --probes 3 \
  --hold 60 --duration 90
SIM_PID=$LAST_PID
wait_for_log "$T_TMP/uesim.log" "all 1 sessions up|FAIL" 30 "$SIM_PID"
grep -q "all 1 sessions up" "$T_TMP/uesim.log" || { cat "$T_TMP/uesim.log" >&2; fail "the simulated UE (ue2) did not come up"; }
wait_for_log "$PORTHOLED_LOG" "\[ue2\]: assigned" 10 || fail "portholed did not assign ue2"

log "portholectl status:"
portholectl_cmd status >"$T_TMP/status.txt" 2>&1
check "portholectl status exits 0" test $? -eq 0
sed 's/^/    /' "$T_TMP/status.txt"
check "status: 2 sessions established" grep -qE '^sessions +2 established' "$T_TMP/status.txt"
check "status: 2 handshakes ok" grep -qE '^handshakes +ok 2,' "$T_TMP/status.txt"

portholectl_cmd --json status >"$T_TMP/status.json"
check "status --json is JSON with sessions == 2" jq -e '.sessions == 2' "$T_TMP/status.json"
check "status --json: handshakes.ok == 2" jq -e '.handshakes.ok == 2' "$T_TMP/status.json"

log "portholectl sessions:"
portholectl_cmd sessions >"$T_TMP/sessions.txt" 2>&1
check "portholectl sessions exits 0" test $? -eq 0
sed 's/^/    /' "$T_TMP/sessions.txt"
check "sessions: ue1 with its inner address $ue1_addr" grep -qE " ue1 +established +$ue1_addr " "$T_TMP/sessions.txt"
check "sessions: ue2 (simulated) established" grep -qE " ue2 +established +100\.64\.0\." "$T_TMP/sessions.txt"

portholectl_cmd --json sessions >"$T_TMP/sessions-1.json"
ue1_down() { jq -r '.sessions[] | select(.identity == "ue1") | .traffic.down.bytes' "$1"; }
ue1_up() { jq -r '.sessions[] | select(.identity == "ue1") | .traffic.up.packets' "$1"; }
check "sessions --json: ue1's outer endpoint is the UE's address (198.18.1.2)" \
  jq -e '.sessions[] | select(.identity == "ue1") | .outer | startswith("198.18.1.2:")' "$T_TMP/sessions-1.json"
check "sessions --json: ue1 has an RTT" \
  jq -e '.sessions[] | select(.identity == "ue1") | .rtt_us > 0' "$T_TMP/sessions-1.json"
ping_summary "$NS_UE" "$OPNET_ADDR" 10
check "ping through the tunnel: 10/10 (got $PING_RX)" test "$PING_RX" -eq 10
portholectl_cmd --json sessions >"$T_TMP/sessions-2.json"
d1=$(ue1_down "$T_TMP/sessions-1.json") d2=$(ue1_down "$T_TMP/sessions-2.json")
u1=$(ue1_up "$T_TMP/sessions-1.json") u2=$(ue1_up "$T_TMP/sessions-2.json")
check "ue1's down bytes grew by 10 echo replies ($d1 -> $d2)" test "$d2" -ge $((d1 + 10 * 84))
check "ue1's up packets grew by 10 or more ($u1 -> $u2)" test "$u2" -ge $((u1 + 10))

log "metrics scrape (curl in $NS_CONC, http://$METRICS/metrics):"
ip netns exec "$NS_CONC" curl -sS -m 5 -o "$T_TMP/metrics.txt" -w '%{http_code}' "http://$METRICS/metrics" >"$T_TMP/metrics.code" 2>&1
check "metrics: HTTP 200 (got $(cat "$T_TMP/metrics.code"))" grep -qx 200 "$T_TMP/metrics.code"
grep -E '^porthole_(sessions|handshakes_total\{result="ok"\}|bytes_total|packets_total|queue_delay_seconds_(count|sum)|reconnects_total|uptime_seconds)[ {]' "$T_TMP/metrics.txt" | sed 's/^/    /'
metric() { awk -v k="$1" '$1 == k { print $2 }' "$T_TMP/metrics.txt"; }
check "metrics: porthole_sessions 2" test "$(metric porthole_sessions)" = 2
check "metrics: handshakes ok 2" test "$(metric 'porthole_handshakes_total{result="ok"}')" = 2
for d in up down; do
  check "metrics: bytes $d > 0" test "$(metric "porthole_bytes_total{direction=\"$d\"}")" -gt 0
  check "metrics: packets $d > 0" test "$(metric "porthole_packets_total{direction=\"$d\"}")" -gt 0
done
check "metrics: every metric has # HELP and # TYPE" \
  test "$(grep -c '^# HELP ' "$T_TMP/metrics.txt")" -eq "$(grep -c '^# TYPE ' "$T_TMP/metrics.txt")"
check "metrics: queue delay histogram has samples" test "$(metric porthole_queue_delay_seconds_count)" -gt 0
# Buckets: cumulative (non-decreasing), the last is +Inf and equals _count.
# shellcheck disable=SC2016 # awk's own variables
check "metrics: histogram buckets non-decreasing, +Inf == _count" awk '
  /^porthole_queue_delay_seconds_bucket/ { v = $2 + 0; if (v < prev) bad = 1; prev = v; last = $1 }
  /^porthole_queue_delay_seconds_count/ { count = $2 + 0 }
  END { exit !(bad == 0 && last ~ /le="\+Inf"/ && prev == count) }' "$T_TMP/metrics.txt"
ip netns exec "$NS_CONC" curl -sS -m 5 -o /dev/null -w '%{http_code}' "http://$METRICS/other" >"$T_TMP/metrics404.code" 2>&1
check "metrics: another path is 404 (got $(cat "$T_TMP/metrics404.code"))" grep -qx 404 "$T_TMP/metrics404.code"

log "errors:"
out=$(portholectl_cmd kick nobody-here 2>&1)
rc=$?
log "    $out"
check "kick of an unknown identity fails (rc $rc)" test "$rc" -ne 0
check "kick of an unknown identity: one line naming it" \
  test "$out" = "portholectl: error: no session for identity 'nobody-here'"

out=$(portholectl_cmd reload 2>&1)
log "    reload -> $out"
check "reload answers with one line (a summary or an error)" test "$(wc -l <<<"$out")" -eq 1

log "kick ue1:"
out=$(portholectl_cmd kick ue1 "maintenance at 10:00" 2>&1)
check "portholectl kick ue1 exits 0 ($out)" test $? -eq 0
wait_exit "$PORTHOLE_PID" 10
check "the kicked client exits (it does not reconnect)" test -n "${WAIT_RC:-}"
check "the client printed the operator's reason" grep -qE "closed by the operator.*maintenance at 10:00" "$PORTHOLE_LOG"
grep -E "closed by the operator|error" "$PORTHOLE_LOG" | tail -n 2 | sed 's/^/    /'
check "portholed logged the kick" grep -q "\[ue1\]: kicked by the operator" "$PORTHOLED_LOG"
sleep 0.5
portholectl_cmd --json sessions >"$T_TMP/sessions-3.json"
check "ue1 is no longer in sessions" jq -e '[.sessions[] | select(.identity == "ue1")] | length == 0' "$T_TMP/sessions-3.json"
check "ue2 is still there" jq -e '[.sessions[] | select(.identity == "ue2" and .state == "established")] | length == 1' "$T_TMP/sessions-3.json"
portholectl_cmd --json status >"$T_TMP/status-2.json"
check "status: kicked == 1, sessions == 1" jq -e '.kicked == 1 and .sessions == 1' "$T_TMP/status-2.json"
# shellcheck disable=SC2016 # jq's own variable
check "status: ue1's traffic is still counted after its session ended" \
  jq -e --argjson d "$d2" '.traffic.down.bytes >= $d' "$T_TMP/status-2.json"

check "portholed still running" kill -0 "$PORTHOLED_PID"
stop_pid "$SIM_PID" TERM 10 || true
finish
