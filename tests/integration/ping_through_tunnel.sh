#!/usr/bin/env bash
# shellcheck disable=SC2119
# ping -c 5 198.18.3.2 from ue succeeds through the tunnel (direct ICMP is blocked by fw);
# NAT egress: opnet sees the concentrator's conc-op address as the source.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_binaries
t_setup
make_pki
start_portholed
start_porthole ue1

addr=$(ue_tun_addr)
check "ue TUN $UE_TUN has an address from $POOL (got '${addr:-none}')" test "${addr%.*}" = 100.64.0
check "ue has 0.0.0.0/1 via $UE_TUN" grep -q "dev $UE_TUN" <<<"$(ip -n "$NS_UE" route show 0.0.0.0/1)"
check "ue has 128.0.0.0/1 via $UE_TUN" grep -q "dev $UE_TUN" <<<"$(ip -n "$NS_UE" route show 128.0.0.0/1)"
check "ue has a host route to $CONC_ADDR via $FW_UE_ADDR" grep -q "via $FW_UE_ADDR" <<<"$(ip -n "$NS_UE" route get "$CONC_ADDR")"

b_icmp=$(fw_counter_packets drop_icmp)
b_up=$(fw_counter_packets tls_up)
log "ping -c 5 $OPNET_ADDR through the tunnel:"
ping_summary "$NS_UE" "$OPNET_ADDR" 5
check "ping through the tunnel: 5/5 replies (got $PING_RX)" test "$PING_RX" -eq 5
check_same "the pings did not hit fw as ICMP" drop_icmp "$b_icmp"
check_grew "they crossed fw inside TCP/443" tls_up "$b_up"

check "ping the concentrator's TUN address $CONC_TUN_ADDR" ping_ok "$NS_UE" "$CONC_TUN_ADDR" 2

peer=$(tcp_request "$NS_UE" "$OPNET_ADDR" 5003 "" 5)
check "NAT egress: opnet sees source $CONC_OP_ADDR (got '$peer')" test "$peer" = "$CONC_OP_ADDR"

check "portholed still running" kill -0 "$PORTHOLED_PID"
check "porthole still running" kill -0 "$PORTHOLE_PID"
finish
