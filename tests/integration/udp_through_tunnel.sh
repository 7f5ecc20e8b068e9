#!/usr/bin/env bash
# shellcheck disable=SC2119
# UDP request/response to opnet:7 works through the tunnel while direct UDP is blocked.
# The fw UDP drop counter must not see the tunneled datagrams; the TCP/443 counter grows.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_binaries
t_setup
make_pki

# Direct UDP before the tunnel exists: blocked and counted.
b=$(fw_counter_packets drop_udp)
check "direct UDP echo (no tunnel) gets no reply" ! udp_echo "$NS_UE" "$OPNET_ADDR" 7 before-tunnel
check_grew "fw dropped the direct datagram" drop_udp "$b"

start_portholed
start_porthole ue1

# Tunneled UDP: several request/response round trips.
b_udp=$(fw_counter_packets drop_udp)
b_up=$(fw_counter_packets tls_up)
b_down=$(fw_counter_packets tls_down)
ok_n=0
for i in 1 2 3 4 5; do
  reply=$(udp_echo "$NS_UE" "$OPNET_ADDR" 7 "porthole-udp-$i-$RANDOM")
  rc=$?
  ((rc == 0)) && ok_n=$((ok_n + 1))
  log "  datagram $i: reply '${reply}'"
done
check "UDP echo through the tunnel: 5/5 round trips (got $ok_n)" test "$ok_n" -eq 5
check_same "fw UDP drop counter did not see the tunneled datagrams" drop_udp "$b_udp"
check_grew "fw TCP/443 upstream counter grew" tls_up "$b_up"
check_grew "fw TCP/443 downstream counter grew" tls_down "$b_down"

# Direct UDP while the tunnel is up: bypass the tunnel routes by binding to ue-fw.
b=$(fw_counter_packets drop_udp)
check "direct UDP (bound to ue-fw) is still blocked while the tunnel is up" \
  ! udp_echo "$NS_UE" "$OPNET_ADDR" 7 direct-while-up ",so-bindtodevice=ue-fw"
check_grew "fw dropped that direct datagram" drop_udp "$b"

# A larger datagram (1200 bytes) also makes it through.
big=$(head -c 900 /dev/urandom | base64 -w0)
check "1200-byte UDP datagram echoed through the tunnel" udp_echo "$NS_UE" "$OPNET_ADDR" 7 "$big"

check "portholed still running" kill -0 "$PORTHOLED_PID"
finish
