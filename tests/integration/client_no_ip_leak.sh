#!/usr/bin/env bash
# shellcheck disable=SC2119
# Full tunnel with an IPv4-only pool: IPv6 must not go around the tunnel. The ue has IPv6 on its
# own link (fd00:18:1::2), yet a route lookup for opnet's IPv6 address leads into the TUN device,
# where the client answers "administratively prohibited": ping6 and a TCP connect fail at once,
# and the firewall sees no IPv6 packet from the ue at all. IPv4 keeps working through the tunnel.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_binaries
t_setup
make_pki

before6=$(ip -n "$NS_UE" -6 route get "$OPNET_ADDR6" 2>&1)
check "before the tunnel, IPv6 to opnet goes out on ue-fw ($before6)" grep -q "dev ue-fw" <<<"$before6"
start_portholed                      # IPv4 pool only
start_porthole ue1 --state-dir "$T_TMP/state"
log "porthole: $(grep -m1 'tunnel up' "$PORTHOLE_LOG")"
check "no IPv6 address assigned on $UE_TUN" test -z "$(ue_tun_addr6)"
check "ue still has its own IPv6 address on ue-fw" \
  grep -q "$UE_ADDR6" <<<"$(ip -n "$NS_UE" -6 addr show dev ue-fw)"

route6=$(ip -n "$NS_UE" -6 route get "$OPNET_ADDR6" 2>&1)
log "ip -6 route get $OPNET_ADDR6: $route6"
check "IPv6 to opnet is routed into $UE_TUN" grep -q "dev $UE_TUN" <<<"$route6"
check "::/1 and 8000::/1 point into $UE_TUN" test "$(ip -n "$NS_UE" -6 route show proto 211 | grep -c "dev $UE_TUN")" -ge 2

declare -A b
for c in drop6_icmp drop6_udp drop6_tcp drop_ipv6 est_other; do b[$c]=$(fw_counter_packets "$c"); done

t0=$(now_s)
out=$(timeout 10 ip netns exec "$NS_UE" ping -6 -n -c 2 -i 0.2 -W 2 "$OPNET_ADDR6" 2>&1)
secs=$(secs_since "$t0")
log "ping6 $OPNET_ADDR6 ($secs s): $(grep -m1 -iE 'unreachable|prohibit|bytes from' <<<"$out")"
check "ping6 gets no reply" ! grep -q "bytes from" <<<"$out"
check "ping6 is told 'administratively prohibited'" grep -qi "prohibited" <<<"$out"

t0=$(now_s)
ip netns exec "$NS_UE" timeout 10 socat -u /dev/null "TCP6:[$OPNET_ADDR6]:5001,connect-timeout=8" \
  >"$T_TMP/tcp6.out" 2>&1
rc=$?
secs=$(secs_since "$t0")
log "TCP6 connect to [$OPNET_ADDR6]:5001: rc $rc in $secs s: $(tail -n 1 "$T_TMP/tcp6.out")"
check "TCP6 connect fails" test "$rc" -ne 0
check "TCP6 connect fails fast (${secs} s < 3 s), not by timeout" awk -v s="$secs" 'BEGIN { exit !(s < 3) }'

for c in drop6_icmp drop6_udp drop6_tcp drop_ipv6; do
  check_same "fw saw no IPv6 from the ue ($c)" "$c" "${b[$c]}"
done
check "client logged the refusal" grep -q "refusing IPv6 traffic" "$PORTHOLE_LOG"
check "IPv4 still goes through the tunnel" ping_ok "$NS_UE" "$OPNET_ADDR" 2

stop_pid "$PORTHOLE_PID" TERM 10 || fail "porthole did not exit within 10 s of SIGTERM"
check "porthole exited 0 (rc $WAIT_RC)" test "$WAIT_RC" -eq 0
check "no proto 211 IPv6 routes left" test -z "$(ip -n "$NS_UE" -6 route show proto 211)"
finish
