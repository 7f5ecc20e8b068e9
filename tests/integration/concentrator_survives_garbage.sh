#!/usr/bin/env bash
# shellcheck disable=SC2119
# The concentrator survives hostile peers:
#  - a peer with a valid cert (ue2) completes TLS and then sends 100 kB of random bytes;
#  - a peer that sends random bytes without TLS;
#  - a peer that connects and closes at once;
#  - a peer that connects and stays silent: its handshake times out (2 s) and it is closed;
# TLS handshakes run on two handshake threads (HandshakePool; the other tests mostly use the
# default, which is the event loop itself on machines with fewer than 4 CPUs).
# Afterwards portholed is alive and ue1 pings through; garbage arriving while ue1 is connected
# does not disturb ue1 (ping loss <= 1).
# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_binaries
t_setup
make_pki
start_portholed --handshake-threads 2 --handshake-timeout 2

tls_garbage() { # N: valid ue2 TLS session, then random bytes
  head -c "${1:-100000}" /dev/urandom |
    timeout 10 ip netns exec "$NS_UE" openssl s_client -quiet -connect "$CONC_ADDR:443" \
      -cert "$PKI/ue2.pem" -key "$PKI/ue2.key" -CAfile "$PKI/ca.pem" -servername concentrator.lab \
      >/dev/null 2>>"$T_TMP/garbage-clients.log"
  true
}
raw_garbage() { # N: random bytes straight onto TCP 443, no TLS
  head -c "${1:-100000}" /dev/urandom |
    timeout 10 ip netns exec "$NS_UE" socat -t 2 -T 5 - "TCP4:$CONC_ADDR:443,connect-timeout=3" \
      >/dev/null 2>>"$T_TMP/garbage-clients.log"
  true
}
plain_http() { # an HTTP request where TLS is expected
  tcp_request "$NS_UE" "$CONC_ADDR" 443 $'GET / HTTP/1.0\r\n\r\n' 3 >/dev/null
  true
}
connect_close() { tcp_connect "$NS_UE" "$CONC_ADDR" 443 3; true; }
# silent_peer: connects, sends nothing, and waits up to 8 s for the concentrator to close;
# prints the seconds it took.
silent_peer() {
  local t0 t1
  t0=$(now_s)
  # (stdin from a process substitution: a pipeline would also wait for sleep)
  timeout 12 ip netns exec "$NS_UE" socat -t 0.2 - "TCP4:$CONC_ADDR:443,connect-timeout=3" \
    < <(sleep 8) >/dev/null 2>&1
  t1=$(now_s)
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }'
}

log "hostile peers without a running tunnel"
tls_garbage 100000
check "the ue2 peer completed the TLS handshake before sending garbage" \
  grep -q "depth=0 CN = concentrator.lab" "$T_TMP/garbage-clients.log"
check "portholed alive after TLS(ue2)+garbage" kill -0 "$PORTHOLED_PID"
raw_garbage 100000
check "portholed alive after raw garbage" kill -0 "$PORTHOLED_PID"
plain_http
connect_close
check "portholed alive after plain HTTP and connect+close" kill -0 "$PORTHOLED_PID"
took=$(silent_peer)
log "a silent peer was closed after $took s"
check "a silent peer is closed when its handshake times out (2 s; took $took s)" \
  awk -v t="$took" 'BEGIN { exit !(t >= 1.5 && t < 6) }'
check "portholed logged the handshake timeout" grep -q "TLS handshake timed out" "$PORTHOLED_LOG"
# A burst of short garbage connections in parallel (bounded: 10 x 5 kB).
BURST=()
for i in $(seq 10); do raw_garbage 5000 & BURST+=("$!"); done
wait_bursts() { local j; for j in "${BURST[@]}"; do wait "$j"; done; BURST=(); }
wait_bursts
check "portholed alive after 10 parallel raw-garbage peers" kill -0 "$PORTHOLED_PID"
check "portholed still listens on $CONC_ADDR:443" wait_listen "$NS_CONC" t 443 2

start_porthole ue1
log "ue1 ping after the garbage:"
ping_summary "$NS_UE" "$OPNET_ADDR" 3
check "ue1 pings through the tunnel after the garbage (3/3, got $PING_RX)" test "$PING_RX" -eq 3

# Garbage while ue1 is connected: ping continuously, meanwhile more hostile peers.
# (The hostile peers reach 198.18.2.2 via the client's host route, outside the tunnel.)
log "hostile peers while ue1 is connected (ping -c 25 -i 0.2 running)"
timeout 30 ip netns exec "$NS_UE" ping -n -c 25 -i 0.2 -W 2 "$OPNET_ADDR" >"$T_TMP/ping-during.txt" 2>&1 &
ping_pid=$!
sleep 0.5
tls_garbage 100000
raw_garbage 100000
plain_http
for i in $(seq 5); do raw_garbage 5000 & BURST+=("$!"); done
for i in $(seq 3); do tls_garbage 20000 & BURST+=("$!"); done
wait_bursts
wait "$ping_pid"
rx=$(sed -n 's/.* \([0-9]\+\) received.*/\1/p' "$T_TMP/ping-during.txt")
grep -E 'packet loss|rtt' "$T_TMP/ping-during.txt" | sed 's/^/    /'
check "ue1 ping during the garbage lost at most 1 of 25 (received ${rx:-0})" test "${rx:-0}" -ge 24
check "portholed alive at the end" kill -0 "$PORTHOLED_PID"
check "porthole (ue1) alive at the end" kill -0 "$PORTHOLE_PID"
check "ue1 still pings at the end" ping_ok "$NS_UE" "$OPNET_ADDR" 2
finish
