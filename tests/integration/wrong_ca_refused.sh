#!/usr/bin/env bash
# shellcheck disable=SC2119
# Certificate checks in both directions:
#  - a UE certificate from an untrusted CA is refused by the concentrator: the client exits
#    non-zero with one "porthole: error: ... authentication refused ..." line; portholed lives on;
#  - a client that does not trust the server's CA (it trusts only the rogue CA), and a client
#    facing a server cert from the rogue CA (TLS-intercepting middlebox), fail with
#    "TLS verification failed ... not issued by the configured CA".
# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_binaries
t_setup
make_pki
BOUND=20

# run_client_expect_error LABEL NAME [args]: run the client in ue (foreground, bounded),
# expect non-zero exit and exactly one "porthole: error: " line. Sets ERR_LINE.
run_client_expect_error() {
  local label=$1 rc n
  shift
  porthole_cmd "$@"
  snapshot_ue "$T_TMP/ue-before-$label.txt"
  timeout "$BOUND" ip netns exec "$NS_UE" "${PORTHOLE_CMD[@]}" </dev/null \
    >"$T_TMP/client-$label.out" 2>"$T_TMP/client-$label.log"
  rc=$?
  ((rc == 124)) && { T_FAILS=$((T_FAILS + 1)); log "FAIL: $label: client still running after ${BOUND}s" >&2; }
  check "$label: client exits non-zero (rc $rc)" test "$rc" -ne 0
  n=$(grep -c '^porthole: error: ' "$T_TMP/client-$label.log")
  ERR_LINE=$(grep '^porthole: error: ' "$T_TMP/client-$label.log" | head -n 1)
  log "$label: stderr error line: ${ERR_LINE:-<none>}"
  check "$label: exactly one 'porthole: error: ' line on stderr (got $n)" test "$n" -eq 1
  snapshot_ue "$T_TMP/ue-after-$label.txt"
  check "$label: failed client left ue link/addr/route state untouched" \
    cmp -s "$T_TMP/ue-before-$label.txt" "$T_TMP/ue-after-$label.txt"
}

start_portholed

# 1. UE cert signed by the rogue CA -> concentrator refuses.
run_client_expect_error rogue-ue rogue-ue
check "rogue-ue: error mentions 'authentication refused'" grep -q "authentication refused" <<<"$ERR_LINE"
check "portholed still running after refusing rogue-ue" kill -0 "$PORTHOLED_PID"

# 2. Client trusts only the rogue CA -> the real server cert does not verify.
run_client_expect_error trust-rogue ue1 --ca "$PKI/rogue-ca.pem"
check "trust-rogue: error mentions 'TLS verification failed'" grep -q "TLS verification failed" <<<"$ERR_LINE"
check "trust-rogue: error mentions 'not issued by the configured CA'" grep -q "not issued by the configured CA" <<<"$ERR_LINE"
check "portholed still running" kill -0 "$PORTHOLED_PID"

# A good client still gets through afterwards.
start_porthole ue1
check "ue1 pings through the tunnel after the refusals" ping_ok "$NS_UE" "$OPNET_ADDR" 2
stop_pid "$PORTHOLE_PID" INT 10 || fail "porthole did not exit within 10 s of SIGINT"

# 3. Middlebox: the server presents a cert for the right name/IP but from the rogue CA.
stop_pid "$PORTHOLED_PID" TERM 10 || fail "portholed did not exit within 10 s of SIGTERM"
check "portholed exited 0 on SIGTERM (rc $WAIT_RC)" test "$WAIT_RC" -eq 0
start_portholed --cert "$PKI/rogue-server.pem" --key "$PKI/rogue-server.key"
run_client_expect_error middlebox ue1
check "middlebox: error mentions 'TLS verification failed'" grep -q "TLS verification failed" <<<"$ERR_LINE"
check "middlebox: error mentions 'not issued by the configured CA'" grep -q "not issued by the configured CA" <<<"$ERR_LINE"
check "rogue-server portholed still running" kill -0 "$PORTHOLED_PID"
finish
