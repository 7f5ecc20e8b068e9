#!/usr/bin/env bash
# shellcheck disable=SC2119
# portholed started as root with --user nobody and a --config file:
#  - it runs as nobody with only CAP_NET_ADMIN, writes its lease file in a directory nobody owns;
#  - SIGHUP after the config file grew the pools (IPv4 /25 -> /24, IPv6 /65 -> /64) and changed
#    limits: the TUN's addresses take the new lengths, ue1 keeps its session and address;
#  - a shrink is refused with one line and nothing changes; a restart-only option (mtu) is
#    reported as "needs a restart" and keeps its running value;
#  - at SIGTERM, still as nobody, it removes its nftables table and exits 0.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_binaries
t_setup
make_pki
id nobody >/dev/null 2>&1 || skip "no user 'nobody'"

# Files nobody must read again at a reload, a state directory it owns.
chmod 711 "$T_TMP"
ETC=$T_TMP/etc
STATE=$T_TMP/state
mkdir -p "$ETC" "$STATE"
cp "$PKI/server.pem" "$PKI/server.key" "$PKI/ca.pem" "$ETC/"
chown nobody "$ETC/server.key" "$STATE"
chmod 755 "$ETC"
chmod 600 "$ETC/server.key"
CONF=$ETC/portholed.conf
write_conf() { # POOL POOL6 [extra lines]
  {
    echo "pool = \"$1\""
    echo "pool6 = \"$2\""
    shift 2
    printf '%s\n' "$@"
  } >"$CONF"
  chmod 644 "$CONF"
}
write_conf 100.64.0.0/25 fd00:64::/65

bg_in "$NS_CONC" "$T_TMP/portholed-1.log" "$PORTHOLED_BIN" --config "$CONF" --listen "$CONC_ADDR:443" \
  --cert "$ETC/server.pem" --key "$ETC/server.key" --client-ca "$ETC/ca.pem" --nat-egress conc-op \
  --user nobody --lease-file "$STATE/leases" --control-socket "" --log-level debug
PORTHOLED_PID=$LAST_PID
PORTHOLED_LOG=$LAST_LOG
wait_for_log "$PORTHOLED_LOG" "listening on" 10 "$PORTHOLED_PID" || fail "portholed did not start (log: $PORTHOLED_LOG)"
log "portholed: $(grep -m1 'running as' "$PORTHOLED_LOG")"
st=/proc/$PORTHOLED_PID/status
nobody_uid=$(id -u nobody)
check "portholed runs as nobody (uid $nobody_uid)" grep -qE "^Uid:[[:space:]]+${nobody_uid}[[:space:]]+${nobody_uid}[[:space:]]+${nobody_uid}" "$st"
check "portholed: effective capabilities = CAP_NET_ADMIN only" grep -qE '^CapEff:[[:space:]]+0000000000001000$' "$st"
check "portholed: no ambient capabilities" grep -qE '^CapAmb:[[:space:]]+0000000000000000$' "$st"

start_porthole ue1
addr0=$(ue_tun_addr)
check "ue1 has an address from the /25 (got '${addr0:-none}')" test "${addr0%.*}" = 100.64.0
wait_for_log "$PORTHOLED_LOG" "assigned" 5 || true
sleep 1
check "nobody wrote the lease file" test -s "$STATE/leases"
start_pinger "$NS_UE" "$OPNET_ADDR" 0.2 60

# Grow both pools, change limits and an option that needs a restart.
write_conf 100.64.0.0/24 fd00:64::/64 "max-sessions = 50" "dns = [\"198.18.3.53\"]" "mtu = 1300"
kill -HUP "$PORTHOLED_PID"
wait_for_log "$PORTHOLED_LOG" "reload: |reload refused" 10 "$PORTHOLED_PID" || fail "no reload line after SIGHUP"
line=$(grep -m1 -E 'reload: |reload refused' "$PORTHOLED_LOG")
log "portholed: $line"
check "reload: pool grew /25 -> /24" grep -q "pool 100.64.0.0/25 -> 100.64.0.0/24" <<<"$line"
check "reload: pool6 grew /65 -> /64" grep -q "pool6 fd00:64::/65 -> fd00:64::/64" <<<"$line"
check "reload: max-sessions 10000 -> 50" grep -q "max-sessions 10000 -> 50" <<<"$line"
check "reload: mtu needs a restart" grep -q "mtu changed: needs a restart" <<<"$line"
addrs=$(ip -n "$NS_CONC" addr show dev "$CONC_TUN")
check "conc TUN has 100.64.0.1/24 (and no /25)" grep -q "inet 100.64.0.1/24" <<<"$addrs"
check "conc TUN no longer has 100.64.0.1/25" ! grep -q "inet 100.64.0.1/25" <<<"$addrs"
check "conc TUN has fd00:64::1/64" grep -q "inet6 fd00:64::1/64" <<<"$addrs"
check "conc TUN mtu still 1400" grep -q "mtu 1400" <<<"$addrs"

# A shrink is refused; nothing changes.
write_conf 100.64.0.0/26 fd00:64::/64
kill -HUP "$PORTHOLED_PID"
wait_for_log "$PORTHOLED_LOG" "reload refused" 10 "$PORTHOLED_PID" || fail "a shrink was not refused"
log "portholed: $(grep -m1 'reload refused' "$PORTHOLED_LOG")"
check "shrink refused with a reason" grep -q "reload refused: pool 100.64.0.0/24 -> 100.64.0.0/26: a pool can only grow" "$PORTHOLED_LOG"
check "conc TUN still has 100.64.0.1/24" grep -q "inet 100.64.0.1/24" <<<"$(ip -n "$NS_CONC" addr show dev "$CONC_TUN")"

sleep 1
stop_pid "$PINGER_PID" INT 5 || true
rx=$(grep -c 'bytes from' "$PINGER_LOG")
last_seq=$(sed -n 's/.*bytes from .*icmp_seq=\([0-9]*\).*/\1/p' "$PINGER_LOG" | tail -n 1)
lost=$((${last_seq:-0} - rx))
log "ue1 ping during the reloads: $rx replies up to icmp_seq ${last_seq:-none}, $lost lost"
check "ue1's ping kept going (>= 5 replies, at most 1 lost)" test "$rx" -ge 5 -a "$lost" -le 1
check "ue1 kept its address ($addr0)" test "$(ue_tun_addr)" = "$addr0"
check "ue1 did not reconnect" test "$(log_count "$PORTHOLED_LOG" '\[ue1\]: (assigned|resumed)')" -eq 1
check "ue1 reaches the concentrator's TUN address" ping_ok "$NS_UE" "$CONC_TUN_ADDR" 2
stop_pid "$PORTHOLE_PID" INT 10 || fail "porthole did not exit within 10 s of SIGINT"

stop_pid "$PORTHOLED_PID" TERM 10 || fail "portholed did not exit within 10 s of SIGTERM"
check "portholed (as nobody) exited 0 (rc $WAIT_RC)" test "$WAIT_RC" -eq 0
check "its nftables table is gone" test "$(ip netns exec "$NS_CONC" nft list tables | grep -c 'porthole')" -eq 0
check "the lease file is still there" test -s "$STATE/leases"
finish
