#!/usr/bin/env bash
# shellcheck disable=SC2119
# Dual stack: portholed listens on 198.18.2.2:443 and [fd00:18:2::2]:443 with an IPv4 and an IPv6
# pool; the client connects over IPv6 (outer), gets 100.64.0.2 and fd00:64::2/64 (inner), and
# ping6, a TCP-over-IPv6 transfer and an IPv4 ping to opnet all work through that one session,
# while fw sees nothing from the ue but TCP to [fd00:18:2::2]:443.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_binaries
t_setup
make_pki

SIZE_MB=${SIZE_MB:-20}
TRANSFER_TIMEOUT=${TRANSFER_TIMEOUT:-120}

check "conc has net.ipv6.conf.all.forwarding=1 (lab)" \
  test "$(ip netns exec "$NS_CONC" sysctl -n net.ipv6.conf.all.forwarding)" = 1

# Both listen addresses (repeatable --listen). A binary that takes only one --listen fails the
# start; fall back to IPv6 only so that the inner dual stack is still tested, and say so.
dual_listen=1
if ! try_start_portholed --listen "$CONC_ADDR:443" --listen "[$CONC_ADDR6]:443" --pool6 "$POOL6"; then
  tail -n 3 "$PORTHOLED_LOG" | sed 's/^/    /' >&2
  kill_pid_tree "$PORTHOLED_PID" 3
  log "NOTE: portholed refused two --listen options; retrying with --listen [$CONC_ADDR6]:443 only"
  dual_listen=0
  start_portholed --listen "[$CONC_ADDR6]:443" --pool6 "$POOL6"
fi
log "portholed: $(grep -m1 'listening on' "$PORTHOLED_LOG")"
check "portholed listens on [$CONC_ADDR6]:443" listening_on "$NS_CONC" t "$CONC_ADDR6" 443
if ((dual_listen)); then
  check "portholed also listens on $CONC_ADDR:443" listening_on "$NS_CONC" t "$CONC_ADDR" 443
fi

b_new6=$(fw_counter_packets tls6_new)
b_new4=$(fw_counter_packets tls_new)
start_porthole ue1 --server "[$CONC_ADDR6]:443"
log "porthole: $(grep -m1 'tunnel up' "$PORTHOLE_LOG")"
check_grew "the session was set up over IPv6 (new TCP to [$CONC_ADDR6]:443)" tls6_new "$b_new6"
check_same "no IPv4 session setup" tls_new "$b_new4"
check "the TLS connection is IPv6: ue socket to [$CONC_ADDR6]:443 established" \
  grep -qF "[$CONC_ADDR6]:443" <<<"$(ip netns exec "$NS_UE" ss -Htn state established)"

addr4=$(ue_tun_addr)
addr6=$(ue_tun_addr6)
check "ue TUN has IPv4 $FIRST_UE_ADDR (got '${addr4:-none}')" test "$addr4" = "$FIRST_UE_ADDR"
check "ue TUN has IPv6 $FIRST_UE_ADDR6/64 (got '${addr6:-none}')" test "$addr6" = "$FIRST_UE_ADDR6/64"
check "ue has ::/1 via $UE_TUN" grep -q "dev $UE_TUN" <<<"$(ip -n "$NS_UE" -6 route show ::/1)"
check "ue has 8000::/1 via $UE_TUN" grep -q "dev $UE_TUN" <<<"$(ip -n "$NS_UE" -6 route show 8000::/1)"
check "ue reaches $CONC_ADDR6 via $FW_UE_ADDR6 (pinned host route)" \
  grep -q "via $FW_UE_ADDR6" <<<"$(ip -n "$NS_UE" -6 route get "$CONC_ADDR6")"

# Everything below must cross fw only inside the IPv6 TCP/443 session.
b_up6=$(fw_counter tls6_up)
b_down6=$(fw_counter tls6_down)
declare -A b_drop
for c in drop_icmp drop_udp drop_tcp drop_other drop6_icmp drop6_udp drop6_tcp drop_ipv6 tls_up; do
  b_drop[$c]=$(fw_counter_packets "$c")
done

log "ping6 -c 5 $OPNET_ADDR6 through the tunnel:"
ping_summary "$NS_UE" "$OPNET_ADDR6" 5
check "ping6 through the tunnel: 5/5 replies (got $PING_RX)" test "$PING_RX" -eq 5
check "ping6 the concentrator's TUN address $CONC_TUN_ADDR6" ping_ok "$NS_UE" "$CONC_TUN_ADDR6" 2

log "IPv4 ping -c 5 $OPNET_ADDR through the same (IPv6-carried) tunnel:"
ping_summary "$NS_UE" "$OPNET_ADDR" 5
check "IPv4 ping through the tunnel: 5/5 replies (got $PING_RX)" test "$PING_RX" -eq 5

payload="v6 over TLS over v6 $RANDOM"
reply=$(udp_echo "$NS_UE" "$OPNET_ADDR6" 7 "$payload")
check "UDP-over-IPv6 echo through the tunnel (got '$reply')" test "$reply" = "$payload"

peer=$(tcp_request "$NS_UE" "$OPNET_ADDR6" 5003 "" 5)
log "opnet's TCP 5003 (IPv6) saw source '$peer' (NAT egress: expected $CONC_OP_ADDR6)"
# socat prints the peer fully expanded and bracketed: [fd00:0018:0003:0000:0000:0000:0000:0001]
check "IPv6 NAT egress: opnet sees source $CONC_OP_ADDR6" \
  grep -qiE "^\[?($CONC_OP_ADDR6|fd00:0018:0003:0000:0000:0000:0000:0001)\]?\$" <<<"$peer"

head -c "${SIZE_MB}M" /dev/urandom >"$T_TMP/payload"
bytes=$(stat -c %s "$T_TMP/payload")
want=$(sha256sum <"$T_TMP/payload" | awk '{print $1}')
log "TCP over IPv6: $SIZE_MB MiB to [$OPNET_ADDR6]:5001 through the tunnel"
t0=$(now_s)
got=$(timeout "$TRANSFER_TIMEOUT" ip netns exec "$NS_UE" socat -t 30 -T 60 - \
  "TCP6:[$OPNET_ADDR6]:5001,connect-timeout=5" <"$T_TMP/payload" 2>/dev/null | awk '{print $1}')
secs=$(secs_since "$t0")
rm -f "$T_TMP/payload"
log "  sent sha256 $want, opnet got ${got:-<none>}; $bytes bytes in $secs s = $(mb_per_s "$bytes" "$secs") MB/s"
check "TCP-over-IPv6 transfer: sha256 matches" test "$got" = "$want"

a_up6=$(fw_counter tls6_up)
a_down6=$(fw_counter tls6_down)
up_bytes=$((${a_up6##* } - ${b_up6##* }))
log "fw tls6_up +$((${a_up6%% *} - ${b_up6%% *})) pkts +$up_bytes bytes, tls6_down +$((${a_down6%% *} - ${b_down6%% *})) pkts"
check "the traffic crossed fw inside TCP/443 over IPv6 (tls6_up bytes +$up_bytes >= $bytes)" test "$up_bytes" -ge "$bytes"
check_grew "replies came back inside the session" tls6_down "${b_down6%% *}"
for c in drop_icmp drop_udp drop_tcp drop_other drop6_icmp drop6_udp drop6_tcp drop_ipv6; do
  check_same "nothing dropped by fw ($c)" "$c" "${b_drop[$c]}"
done
check_same "no IPv4 TCP/443 traffic (the outer session is IPv6)" tls_up "${b_drop[tls_up]}"

# Direct IPv6 is still blocked while the tunnel is up (socket bound to ue-fw bypasses the TUN).
b=$(fw_counter_packets drop6_udp)
check "direct UDP over IPv6 bound to ue-fw gets no reply" ! udp_echo "$NS_UE" "$OPNET_ADDR6" 7 direct6 ",so-bindtodevice=ue-fw"
check_grew "fw dropped that direct IPv6 datagram" drop6_udp "$b"

check "portholed still running" kill -0 "$PORTHOLED_PID"
check "porthole still running" kill -0 "$PORTHOLE_PID"
finish
