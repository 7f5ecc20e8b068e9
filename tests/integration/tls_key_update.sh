#!/usr/bin/env bash
# shellcheck disable=SC2119
# TLS 1.3 KeyUpdate on a live tunnel: both ends run with --key-update-records 64, so bulk
# traffic renews each side's sending key every 64 records. 40 MiB up (sha256 checked by opnet)
# and 40 MiB down (byte count) must cross intact in the one session (no reconnect), and both ends
# must report the key updates they sent: `porthole status --json` and `portholectl status
# --json` (tls_key_updates). A peer that did not follow a KeyUpdate could not decrypt a single
# record after it, so the transfers themselves prove that the other side switched keys. Where
# porthole seals its records itself, this is also the record sealer's end-to-end test.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_binaries
require_tool jq
t_setup
make_pki

STATE=$T_TMP/state
MB=40
data=$T_TMP/payload.bin
head -c "${MB}M" /dev/urandom >"$data"
want=$(sha256sum <"$data" | awk '{print $1}')
bytes=$((MB * 1024 * 1024))
# Each full record carries at most 16 KiB: at least this many key updates per direction.
min_updates=$((bytes / 16384 / 64))

start_portholed --key-update-records 64
start_porthole ue1 --state-dir "$STATE" --key-update-records 64

log "sending $MB MiB to $OPNET_ADDR:5001 through the tunnel"
got=$(timeout 120 ip netns exec "$NS_UE" \
  socat -t 30 -T 60 - "TCP4:$OPNET_ADDR:5001,connect-timeout=5" <"$data" 2>"$T_TMP/socat-up.err" | awk '{print $1}')
check "opnet received exactly what ue sent (sha256 ${got:-<none>})" test "$got" = "$want"

log "receiving $MB MiB from $OPNET_ADDR:5002 through the tunnel"
down=$(echo "$bytes" | timeout 120 ip netns exec "$NS_UE" \
  socat -t 30 -T 60 - "TCP4:$OPNET_ADDR:5002,connect-timeout=5" 2>"$T_TMP/socat-down.err" | wc -c)
check "ue received all $bytes bytes ($down)" test "$down" -eq "$bytes"
check "ping through the tunnel afterwards" ping_ok "$NS_UE" "$OPNET_ADDR" 3

client=$("$PORTHOLE_BIN" status --json --tun-name "$UE_TUN" --state-dir "$STATE")
log "client: $(jq -c '{state, reconnects, tls_key_updates}' <<<"$client")"
server=$(portholectl_cmd status --json)
log "concentrator: $(jq -c '{sessions, tls_key_updates, tls_handshakes}' <<<"$server")"
check "client: still the first session (reconnects 0)" test "$(jq -r .reconnects <<<"$client")" = 0
check "client sent >= $min_updates key updates" \
  test "$(jq -r .tls_key_updates <<<"$client")" -ge "$min_updates"
check "concentrator sent >= $min_updates key updates" \
  test "$(jq -r .tls_key_updates <<<"$server")" -ge "$min_updates"
check "concentrator: one full TLS handshake in all" \
  test "$(jq -r .tls_handshakes.full <<<"$server")" = 1
text=$(portholectl_cmd status)
check "portholectl status shows the key updates" grep -qE '^tls .*key updates sent [1-9]' <<<"$text"
# Who sealed and opened the records: porthole itself where the build has ipsec-mb and the CPU AES-NI
# (src/tls/README.md "Record sealing"), OpenSSL otherwise; both ends say so once at start.
sealer_c=$(grep -m1 -o 'TLS records are sealed and opened by .*' "$PORTHOLE_LOG")
sealer_d=$(grep -m1 -o 'TLS records are sealed and opened by .*' "$PORTHOLED_LOG")
log "client: ${sealer_c:-<no line>}"
log "concentrator: ${sealer_d:-<no line>}"
check "both ends log who seals and opens their records" test -n "$sealer_c" -a -n "$sealer_d"
if ldd "$PORTHOLED_BIN" 2>/dev/null | grep -q libIPSec_MB && grep -qw aes /proc/cpuinfo; then
  check "with ipsec-mb and AES-NI, porthole seals and opens (across all the key updates above)" \
    grep -q 'opened by porthole (ipsec-mb' <<<"$sealer_d"
  check "the client's connection: records sealed and opened by porthole" \
    test "$(jq -r .tls_records_sealed <<<"$client")" -gt 0 -a \
         "$(jq -r .tls_records_opened <<<"$client")" -gt 0
fi
check "no session ended on the concentrator" test "$(log_count "$PORTHOLED_LOG" ': ended: ')" = 0
check "portholed still running" kill -0 "$PORTHOLED_PID"
check "porthole still running" kill -0 "$PORTHOLE_PID"
finish
