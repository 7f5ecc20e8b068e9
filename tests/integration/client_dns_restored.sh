#!/usr/bin/env bash
# shellcheck disable=SC2119
# DNS from the concentrator (--dns, --dns-search) is applied on the UE and undone. The lab has no
# systemd-resolved, so the client takes the resolv.conf path: `ip netns exec` bind-mounts
# /etc/netns/<ue>/resolv.conf over /etc/resolv.conf, and this test creates that file (and removes
# the directory again). Checks:
#   - while up, the ue sees only the tunnel's server and search domain (full tunnel: no leak);
#   - the client dropped every capability but CAP_NET_ADMIN (uid 0 kept) — and still restores;
#   - SIGTERM restores the original content and removes the state file;
#   - SIGKILL leaves the tunnel's content and the state file; the next start undoes it first and
#     says so in one line; its own SIGTERM then restores the original again.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_binaries
t_setup
make_pki

NETNS_ETC=/etc/netns/$NS_UE
[[ -e $NETNS_ETC ]] && fail "$NETNS_ETC exists already (left by someone else?)"
NETNS_TOP_CREATED=0 # used in the EXIT trap
# shellcheck disable=SC2034
[[ -d /etc/netns ]] || NETNS_TOP_CREATED=1
mkdir -p "$NETNS_ETC" || fail "cannot create $NETNS_ETC"
# Only what this test created is removed (/etc/netns itself only if it made it and it is empty).
trap 'rc=$?; rm -rf -- "$NETNS_ETC"; ((NETNS_TOP_CREATED)) && rmdir /etc/netns 2>/dev/null; (exit $rc); t_cleanup' EXIT

ORIGINAL=$'# the ue\'s own resolver (test content)\nnameserver 192.0.2.53\nsearch home.test\noptions edns0\n'
printf '%s' "$ORIGINAL" >"$NETNS_ETC/resolv.conf"
STATE=$T_TMP/state
ue_resolv() { ip netns exec "$NS_UE" cat /etc/resolv.conf; }
check "the ue namespace sees the test's resolv.conf" test "$(ue_resolv)" = "${ORIGINAL%$'\n'}"

start_portholed --dns "$CONC_TUN_ADDR" --dns-search lab.example
start_porthole ue1 --state-dir "$STATE"
wait_for_log "$PORTHOLE_LOG" "DNS applied" 10 "$PORTHOLE_PID" || fail "porthole did not log 'DNS applied'"
log "porthole: $(grep -m1 'DNS applied' "$PORTHOLE_LOG")"
up=$(ue_resolv)
printf '%s\n' "$up" | sed 's/^/    ue resolv.conf: /'
check "ue resolv.conf lists the tunnel's server $CONC_TUN_ADDR" grep -qx "nameserver $CONC_TUN_ADDR" <<<"$up"
check "ue resolv.conf searches lab.example" grep -qx "search lab.example" <<<"$up"
check "full tunnel: the original server is not listed" ! grep -q "192.0.2.53" <<<"$up"
check "exactly one nameserver line" test "$(grep -c '^nameserver' <<<"$up")" -eq 1
check "options kept" grep -qx "options edns0" <<<"$up"
check "state file $STATE/$UE_TUN.state written" test -s "$STATE/$UE_TUN.state"
check "original kept in $STATE/$UE_TUN.resolv.conf" test "$(cat "$STATE/$UE_TUN.resolv.conf")" = "${ORIGINAL%$'\n'}"

# Privileges: only CAP_NET_ADMIN (bit 12) left, uid still 0.
wait_for_log "$PORTHOLE_LOG" "privileges dropped" 5 "$PORTHOLE_PID"
caps=$(awk '/^Cap(Prm|Eff|Bnd):/ { printf "%s=%s ", $1, $2 }' "/proc/$PORTHOLE_PID/status")
uid=$(awk '/^Uid:/ { print $2 }' "/proc/$PORTHOLE_PID/status")
log "porthole credentials: uid $uid $caps"
check "porthole kept uid 0" test "$uid" = 0
check "porthole's effective/permitted/bounding caps are CAP_NET_ADMIN only" \
  test "$caps" = "CapPrm:=0000000000001000 CapEff:=0000000000001000 CapBnd:=0000000000001000 "
check "ping through the tunnel still works" ping_ok "$NS_UE" "$OPNET_ADDR" 2

stop_pid "$PORTHOLE_PID" TERM 10 || fail "porthole did not exit within 10 s of SIGTERM"
check "porthole exited 0 after SIGTERM (rc $WAIT_RC)" test "$WAIT_RC" -eq 0
check "after SIGTERM the ue's resolv.conf is the original again (restored without privileges)" \
  test "$(ue_resolv)" = "${ORIGINAL%$'\n'}"
check "client logged the restore" grep -q "DNS: restored /etc/resolv.conf" "$PORTHOLE_LOG"
check "state file removed" test ! -e "$STATE/$UE_TUN.state"
check "copy removed" test ! -e "$STATE/$UE_TUN.resolv.conf"

# Crash: SIGKILL leaves the change and its record behind; the next start undoes it first.
start_porthole ue1 --state-dir "$STATE"
wait_for_log "$PORTHOLE_LOG" "DNS applied" 10 "$PORTHOLE_PID" || fail "second run: no 'DNS applied'"
killed=$PORTHOLE_PID
stop_pid "$PORTHOLE_PID" KILL 10 || fail "porthole did not die of SIGKILL"
check "after SIGKILL the tunnel's resolv.conf is still there" grep -qx "nameserver $CONC_TUN_ADDR" <<<"$(ue_resolv)"
check "after SIGKILL the state file is still there" test -s "$STATE/$UE_TUN.state"

start_porthole ue1 --state-dir "$STATE"
recovered=$(grep -m1 "found DNS settings left by porthole pid $killed" "$PORTHOLE_LOG")
log "third run: ${recovered:-<no recovery message>}"
check "the next start reports the crash recovery in one line" \
  grep -q "found DNS settings left by porthole pid $killed (no longer running): restored /etc/resolv.conf" <<<"$recovered"
wait_for_log "$PORTHOLE_LOG" "DNS applied" 10 "$PORTHOLE_PID" || fail "third run: no 'DNS applied'"
check "third run applied the tunnel's DNS again" grep -qx "nameserver $CONC_TUN_ADDR" <<<"$(ue_resolv)"
stop_pid "$PORTHOLE_PID" TERM 10 || fail "porthole did not exit within 10 s of SIGTERM"
check "porthole exited 0 (rc $WAIT_RC)" test "$WAIT_RC" -eq 0
check "finally the ue's resolv.conf is the original" test "$(ue_resolv)" = "${ORIGINAL%$'\n'}"
check "no state left in $STATE" test ! -e "$STATE/$UE_TUN.state" -a ! -e "$STATE/$UE_TUN.resolv.conf"

# --dns off: the assignment is not applied at all.
start_porthole ue1 --state-dir "$STATE" --dns off
check "--dns off: resolv.conf untouched while up" test "$(ue_resolv)" = "${ORIGINAL%$'\n'}"
check "--dns off: said so" grep -q "not applied (--dns off)" "$PORTHOLE_LOG"
stop_pid "$PORTHOLE_PID" TERM 10 || fail "porthole did not exit within 10 s of SIGTERM"
finish
