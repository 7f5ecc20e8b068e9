#!/usr/bin/env bash
# shellcheck disable=SC2119
# Without the tunnel, the lab firewall blocks ICMP, UDP and TCP (5001, 80) from ue to opnet,
# and forwards TCP to the concentrator's 198.18.2.2:443. Needs no porthole binary.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
t_setup

c() { fw_counter_packets "$1"; }

b=$(c drop_icmp)
check "ping ue -> opnet $OPNET_ADDR is blocked" ! ping_ok "$NS_UE" "$OPNET_ADDR" 2
check_grew "fw counted the dropped ICMP" drop_icmp "$b"

b=$(c drop_udp)
check "UDP echo ue -> opnet $OPNET_ADDR:7 gets no reply" ! udp_echo "$NS_UE" "$OPNET_ADDR" 7 direct-udp
check_grew "fw counted the dropped UDP" drop_udp "$b"

for port in 5001 80; do
  b=$(c drop_tcp)
  check "TCP ue -> opnet $OPNET_ADDR:$port is blocked" ! tcp_connect "$NS_UE" "$OPNET_ADDR" "$port" 2
  check_grew "fw counted the dropped TCP SYN to :$port" drop_tcp "$b"
done

b=$(c in_drop_ue)
check "TCP ue -> fw itself ($FW_UE_ADDR:22) is blocked" ! tcp_connect "$NS_UE" "$FW_UE_ADDR" 22 2
check_grew "fw input chain counted it" in_drop_ue "$b"

# TCP/443 to the concentrator address crosses fw: throw-away listener in conc.
ip netns exec "$NS_CONC" socat "TCP4-LISTEN:443,bind=$CONC_ADDR,reuseaddr" SYSTEM:'echo hello-from-conc' \
  </dev/null >/dev/null 2>&1 &
T_PIDS+=("$!")
wait_listen "$NS_CONC" t 443 5 || fail "throw-away listener on $CONC_ADDR:443 did not start"
b=$(c tls_new)
reply=$(tcp_request "$NS_UE" "$CONC_ADDR" 443 "" 3)
check "TCP ue -> conc $CONC_ADDR:443 passes fw (got '$reply')" test "$reply" = hello-from-conc
check_grew "fw accept counter for new TCP/443 grew" tls_new "$b"

# The 443 rule is address-specific: 443 on conc's other address is blocked.
b=$(c drop_tcp)
check "TCP ue -> $CONC_OP_ADDR:443 (not the concentrator address) is blocked" ! tcp_connect "$NS_UE" "$CONC_OP_ADDR" 443 2
check_grew "fw counted it" drop_tcp "$b"

# Control: with the firewall opened, the same direct traffic works (routing is complete).
bash "$LAB_SH" open >/dev/null || fail "lab.sh open failed"
check "with fw open: ping ue -> opnet works" ping_ok "$NS_UE" "$OPNET_ADDR" 2
check "with fw open: UDP echo ue -> opnet works" udp_echo "$NS_UE" "$OPNET_ADDR" 7 open-udp
check "with fw open: TCP ue -> opnet:5001 works" tcp_connect "$NS_UE" "$OPNET_ADDR" 5001 2
bash "$LAB_SH" close >/dev/null || fail "lab.sh close failed"
check "after close: ping ue -> opnet blocked again" ! ping_ok "$NS_UE" "$OPNET_ADDR" 1

finish
