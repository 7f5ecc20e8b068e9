#!/usr/bin/env bash
# shellcheck disable=SC2119
# Routed mode (no --nat-egress): opnet sees the UE's pool address as the source, and replies
# find their way back (opnet's default route points at conc, which routes the pool to its TUN).
# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_binaries
t_setup
make_pki
start_portholed --routed
start_porthole ue1

addr=$(ue_tun_addr)
log "ue TUN address: ${addr:-none}"
check "ue TUN has an address from $POOL" test "${addr%.*}" = 100.64.0
log "ping -c 5 $OPNET_ADDR (routed):"
ping_summary "$NS_UE" "$OPNET_ADDR" 5
check "ping ue -> opnet through the tunnel in routed mode (5/5, got $PING_RX)" test "$PING_RX" -eq 5
peer=$(tcp_request "$NS_UE" "$OPNET_ADDR" 5003 "" 5)
check "opnet sees the UE's pool address as source (expected '$addr', got '$peer')" test -n "$addr" -a "$peer" = "$addr"
check "UDP echo works in routed mode" udp_echo "$NS_UE" "$OPNET_ADDR" 7 routed-udp
check "routed mode: no nat table rules masquerading (nft table inet porthole has no masquerade)" \
  ! grep -q masquerade <<<"$(ip netns exec "$NS_CONC" nft list ruleset 2>/dev/null)"
check "portholed still running" kill -0 "$PORTHOLED_PID"
finish
