#!/usr/bin/env bash
# shellcheck disable=SC2119
# 100 MB over TCP from ue to opnet:5001 through the tunnel; opnet replies with the sha256 of
# what it received, which must match. Prints MB/s. Bounded by TRANSFER_TIMEOUT.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_binaries
t_setup
make_pki

SIZE_MB=${SIZE_MB:-100}
TRANSFER_TIMEOUT=${TRANSFER_TIMEOUT:-150}
data=$T_TMP/payload.bin
head -c "${SIZE_MB}M" /dev/urandom >"$data"
want=$(sha256sum <"$data" | awk '{print $1}')
bytes=$(stat -c %s "$data")

start_portholed
start_porthole ue1

b_up=$(fw_counter_bytes tls_up)
log "sending $SIZE_MB MiB ($bytes bytes) to $OPNET_ADDR:5001 through the tunnel (timeout ${TRANSFER_TIMEOUT}s)"
t0=$(now_s)
got=$(timeout "$TRANSFER_TIMEOUT" ip netns exec "$NS_UE" \
  socat -t 30 -T 60 - "TCP4:$OPNET_ADDR:5001,connect-timeout=5" <"$data" 2>"$T_TMP/socat.err" | awk '{print $1}')
rc=$?
t1=$(now_s)
secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
((rc == 124)) && fail "transfer did not finish within ${TRANSFER_TIMEOUT}s"
log "sha256 sent:     $want"
log "sha256 received: ${got:-<none>}"
log "throughput: $(mb_per_s "$bytes" "$secs") MB/s ($bytes bytes in ${secs}s)"
check "opnet received exactly what ue sent (sha256 match)" test "$got" = "$want"
up=$(fw_counter_bytes tls_up)
check "the payload crossed fw inside TCP/443 (tls_up bytes grew by $((up - b_up)) >= $bytes)" \
  test $((up - b_up)) -ge "$bytes"
check "portholed still running" kill -0 "$PORTHOLED_PID"
check "porthole still running" kill -0 "$PORTHOLE_PID"
finish
