#!/usr/bin/env bash
# portholed's control socket as the operating system sees it:
#   - created 0660 with the control group (--control-group nogroup), its directory created 0750;
#     a member of the group may use portholectl, another user gets the one-line "permission
#     denied (run as root or as a member of the control group)" error;
#   - hostile local clients (random bytes, an over-long line, 20 clients that connect and never
#     send, an unknown request) get errors or are closed after the timeout, and do not disturb a
#     UE's ping running meanwhile;
#   - a second portholed on the same socket refuses to start ("in use by another portholed");
#     after a crash (SIGKILL) the stale socket file is replaced by the next start; a clean stop
#     removes the file.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_binaries
require_tool socat
require_tool setpriv util-linux
[[ -n ${PORTHOLECTL_BIN:-} && -x $PORTHOLECTL_BIN ]] || fail "PORTHOLECTL_BIN not set or not executable"
if ! getent group nogroup >/dev/null || ! getent passwd nobody >/dev/null; then skip "no nobody/nogroup accounts"; fi

t_setup
make_pki
SOCK=$T_TMP/run/portholed.sock
start_portholed --control-socket "$SOCK" --control-group nogroup

check "socket file is a socket" test -S "$SOCK"
check "socket mode 660, group nogroup (got $(stat -c '%a %G' "$SOCK"))" test "$(stat -c '%a %G' "$SOCK")" = "660 nogroup"
check "its directory was created 750, group nogroup (got $(stat -c '%a %G' "$T_TMP/run"))" \
  test "$(stat -c '%a %G' "$T_TMP/run")" = "750 nogroup"

# Other users: may enter $T_TMP and run a copy of portholectl there.
chmod 0711 "$T_TMP"
install -m 0755 "$PORTHOLECTL_BIN" "$T_TMP/portholectl"
as_user() { # GROUP ARGS...: portholectl as nobody with the given group only
  local g=$1
  shift
  timeout 20 setpriv --reuid=nobody --regid="$g" --clear-groups "$T_TMP/portholectl" --socket "$SOCK" "$@"
}
out=$(as_user nogroup status 2>&1)
check "a member of the control group may use portholectl (rc $?)" test $? -eq 0
out=$(as_user daemon status 2>&1)
rc=$?
log "    as nobody:daemon: $out"
check "another user is refused (rc $rc)" test "$rc" -ne 0
check "the refusal is one line naming root and the control group" test "$out" = \
  "portholectl: error: cannot reach portholed at $SOCK: permission denied (run as root or as a member of the control group)"
out=$(timeout 20 "$PORTHOLECTL_BIN" --socket "$T_TMP/none.sock" status 2>&1)
log "    no daemon: $out"
check "no daemon: one line" test "$out" = \
  "portholectl: error: cannot reach portholed at $T_TMP/none.sock: no such file (is portholed running?)"

start_porthole ue1
start_pinger "$NS_UE" "$OPNET_ADDR" 0.1 150

log "hostile control clients while ue1 pings"
ask() { timeout 10 socat -t 2 - "UNIX-CONNECT:$SOCK" 2>>"$T_TMP/socat.log"; }
out=$(echo hello | ask)
log "    'hello' -> $out"
check "unknown request: an error reply" grep -q '"error":"unknown request' <<<"$out"
head -c 5000 /dev/urandom | ask >/dev/null
out=$(head -c 100000 /dev/zero | tr '\0' a | ask)
log "    100000 x 'a' -> $out"
check "over-long line: 'request too long'" grep -q 'request too long' <<<"$out"
t0=$(now_s)
idle_pids=()
for i in $(seq 1 20); do
  (sleep 12 | timeout 15 socat - "UNIX-CONNECT:$SOCK" >/dev/null 2>&1) &
  idle_pids+=("$!")
  T_PIDS+=("$!")
done
sleep 1
out=$(portholectl_cmd status 2>&1)
log "    while 20 idle clients hold the 16 slots: $(head -n 1 <<<"$out")"
wait_for_log_count "$PORTHOLED_LOG" "connection timed out; closed" 16 10
t_idle=$(secs_since "$t0")
check "the 16 idle clients were closed by the server's 5 s timeout (after ${t_idle}s; they would wait 12 s)" \
  test "$(log_count "$PORTHOLED_LOG" "connection timed out; closed")" -ge 16
for p in "${idle_pids[@]}"; do wait "$p" 2>/dev/null; done
out=$(portholectl_cmd status 2>&1)
check "portholectl status works after the hostile clients (rc $?)" test $? -eq 0
check "status still shows ue1's session" grep -qE '^sessions +1 established' <<<"$out"
wait "$PINGER_PID" 2>/dev/null
rx=$(sed -n 's/.* \([0-9]\+\) received.*/\1/p' "$PINGER_LOG")
log "    ue1's ping during all this: $(grep -E 'packet loss' "$PINGER_LOG")"
check "ue1's ping was not disturbed (>= 149/150 replies, got ${rx:-0})" test "${rx:-0}" -ge 149

log "a second portholed on the same socket (in $NS_OPNET, so that nothing else clashes)"
ip netns exec "$NS_OPNET" "$PORTHOLED_BIN" --listen "$OPNET_ADDR:8443" --cert "$PKI/server.pem" \
  --key "$PKI/server.key" --client-ca "$PKI/ca.pem" --pool 100.65.0.0/24 --tun-name phctl1 \
  --control-socket "$SOCK" </dev/null >"$T_TMP/second.log" 2>&1 &
second=$!
T_PIDS+=("$second")
wait_exit "$second" 15 || fail "the second portholed did not exit"
log "    $(tail -n 1 "$T_TMP/second.log")"
check "the second portholed exits 1 (rc $WAIT_RC)" test "$WAIT_RC" -eq 1
check "it says the socket is in use" grep -q "portholed: error: control socket $SOCK is in use by another portholed" "$T_TMP/second.log"
check "the first still answers" portholectl_cmd status

log "crash, then restart: the stale socket file is replaced"
stop_pid "$PORTHOLE_PID" INT 10 || true
stop_pid "$PORTHOLED_PID" KILL 10 || fail "portholed did not die on SIGKILL"
check "the socket file is left behind by the crash" test -S "$SOCK"
start_portholed --control-socket "$SOCK" --control-group nogroup
check "the restarted portholed answers on the same path" portholectl_cmd status
stop_pid "$PORTHOLED_PID" TERM 10 || fail "portholed did not stop on SIGTERM"
check "portholed exited 0 (rc $WAIT_RC)" test "$WAIT_RC" -eq 0
check "a clean stop removes the socket file" test ! -e "$SOCK"
finish
