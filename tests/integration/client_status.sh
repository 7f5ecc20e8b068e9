#!/usr/bin/env bash
# shellcheck disable=SC2119
# `porthole status` (text and --json) against a running client: state, server, inner address,
# traffic counters that grow with a ping, RTT, DNS. The client runs as under sudo (SUDO_GID set):
# its socket <state-dir>/<tun>.sock is 0660 with that group, and a non-root member of the group
# gets the status without sudo; anyone else is refused.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_binaries
require_tool jq
require_tool setpriv util-linux
t_setup
make_pki

STATE=$T_TMP/state
chmod 711 "$T_TMP"  # the non-root status reader must reach $STATE (traverse only)
GID=$(getent group nogroup | cut -d: -f3)
[[ -n $GID ]] || fail "no group 'nogroup'"
status() { "$PORTHOLE_BIN" status --tun-name "$UE_TUN" --state-dir "$STATE" "$@"; }

start_portholed --dns "$CONC_TUN_ADDR"
start_porthole ue1 --state-dir "$STATE" --dns off
# start_porthole cannot pass environment: restart the same command line with SUDO_GID set.
stop_pid "$PORTHOLE_PID" TERM 10 || fail "porthole did not stop"
porthole_cmd ue1 --state-dir "$STATE" --dns off
bg_in "$NS_UE" "$T_TMP/porthole-sudo.log" env SUDO_GID="$GID" "${PORTHOLE_CMD[@]}"
PORTHOLE_PID=$LAST_PID
wait_for_log "$LAST_LOG" "tunnel up" 15 "$PORTHOLE_PID" || fail "porthole (SUDO_GID) did not come up"

SOCK=$STATE/$UE_TUN.sock
check "status socket $SOCK exists" test -S "$SOCK"
perm=$(stat -c '%a %U %G' "$SOCK")
log "socket: $perm"
check "socket is 0660 root:nogroup ($perm)" test "$perm" = "660 root nogroup"

check "ping through the tunnel" ping_ok "$NS_UE" "$OPNET_ADDR" 3
sleep 0.2
text=$(status 2>&1)
printf '%s\n' "$text" | sed 's/^/    /'
check "text: state up" grep -qE '^state: +up' <<<"$text"
check "text: server $CONC_ADDR:443" grep -qE "^server: +$CONC_ADDR:443" <<<"$text"
check "text: tunnel $UE_TUN $FIRST_UE_ADDR/24, full tunnel" grep -qE "^tunnel: +$UE_TUN $FIRST_UE_ADDR/24, full tunnel" <<<"$text"
check "text: DNS not applied (--dns off)" grep -qE '^dns: +not applied \(--dns off\)' <<<"$text"

json=$(status --json)
log "json: $json"
check "json: state up" test "$(jq -r .state <<<"$json")" = up
check "json: address $FIRST_UE_ADDR/24" test "$(jq -r '.addresses[0]' <<<"$json")" = "$FIRST_UE_ADDR/24"
check "json: packets_up >= 3" test "$(jq -r .packets_up <<<"$json")" -ge 3
check "json: packets_down >= 3" test "$(jq -r .packets_down <<<"$json")" -ge 3
check "json: bytes_down > 0" test "$(jq -r .bytes_down <<<"$json")" -gt 0
check "json: pid is the client's" test "$(jq -r .pid <<<"$json")" = "$PORTHOLE_PID"
check "json: reconnects 0" test "$(jq -r .reconnects <<<"$json")" = 0

# Not root, but in the group: allowed. Not in the group: refused with one clear line.
member=$(setpriv --reuid=65534 --regid="$GID" --clear-groups "$PORTHOLE_BIN" status --json \
  --tun-name "$UE_TUN" --state-dir "$STATE" 2>&1)
check "a non-root member of the group reads the status" test "$(jq -r .state <<<"$member" 2>/dev/null)" = up
other=$(setpriv --reuid=65534 --regid=65533 --clear-groups "$PORTHOLE_BIN" status \
  --tun-name "$UE_TUN" --state-dir "$STATE" 2>&1)
log "outsider: $other"
check "anyone else is refused with one line" grep -qi "permission denied" <<<"$other"

# The concentrator goes away: the client reports reconnecting, with the last error.
stop_pid "$PORTHOLED_PID" TERM 10 || fail "portholed did not stop"
for _ in $(seq 50); do
  [[ $(status --json 2>/dev/null | jq -r .state) == reconnecting ]] && break
  sleep 0.2
done
json=$(status --json)
log "after the concentrator stopped: $(jq -c '{state, reconnects, last_error}' <<<"$json")"
check "json: state reconnecting" test "$(jq -r .state <<<"$json")" = reconnecting
check "json: last_error set" test -n "$(jq -r .last_error <<<"$json")"

stop_pid "$PORTHOLE_PID" TERM 10 || fail "porthole did not exit within 10 s of SIGTERM"
check "porthole exited 0 (rc $WAIT_RC)" test "$WAIT_RC" -eq 0
check "socket removed at exit" test ! -e "$SOCK"
check "status without a client: one clear line" grep -q "is porthole running" <<<"$(status 2>&1)"
finish
