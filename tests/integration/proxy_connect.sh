#!/usr/bin/env bash
# shellcheck disable=SC2119
# 3GPP TS 24.322 "restrictive access network type II": the lab firewall in proxy-only mode lets
# the ue reach nothing but the HTTP proxy (tinyproxy, 198.18.4.2:3128, Basic auth lab/labpass,
# CONNECT only to port 443), and only the proxy reach the concentrator's 443.
#  - a client without a proxy cannot connect ("cannot reach the concentrator");
#  - with --proxy http://lab:labpass@198.18.4.2:3128 the tunnel comes up through the proxy (the
#    proxy's fw counters grow, the client pins a host route to the proxy), ping and a TCP transfer
#    to opnet work; with https_proxy / HTTPS_PROXY in the environment too; --proxy none overrides
#    the environment (and fails here, the direct path being closed);
#  - the proxy's refusals are one clear error line each: no credentials -> 407, a wrong password ->
#    401 or 407 (tinyproxy 1.11 answers 401 to wrong credentials, 407 to missing ones), a
#    destination port the proxy does not allow (8443) -> 403, a proxy port the firewall drops ->
#    "cannot reach the proxy". A failed client leaves the ue untouched; portholed lives on.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_binaries
require_tool tinyproxy
"$PORTHOLE_BIN" connect --help 2>&1 | grep -q -- '--proxy' ||
  fail "this porthole has no --proxy option (HTTP CONNECT proxy support missing in $PORTHOLE_BIN)"
t_setup
make_pki
SIZE_MB=${SIZE_MB:-10}
BOUND=25
PROXY_URL=http://$PROXY_USER:$PROXY_PASS@$PROXY_ADDR:$PROXY_PORT

start_portholed
bash "$LAB_SH" proxy-only >"$T_TMP/proxy-only.out" 2>&1 || { cat "$T_TMP/proxy-only.out" >&2; fail "lab.sh proxy-only (and its check) failed"; }
sed 's/^/    /' "$T_TMP/proxy-only.out"
log "fw in proxy-only mode"

# client_must_fail LABEL [porthole_cmd args]: run the client (cert ue1) in ue in the foreground,
# bounded; expect a non-zero exit, exactly one "porthole: error: " line (ERR_LINE) and an
# untouched ue.
client_must_fail() {
  local label=$1 rc n
  shift
  porthole_cmd ue1 "$@"
  snapshot_ue "$T_TMP/ue-before-$label.txt"
  timeout "$BOUND" ip netns exec "$NS_UE" "${PORTHOLE_CMD[@]}" </dev/null \
    >"$T_TMP/client-$label.out" 2>"$T_TMP/client-$label.log"
  rc=$?
  ((rc == 124)) && { T_FAILS=$((T_FAILS + 1)); log "FAIL: $label: client still running after ${BOUND}s" >&2; }
  check "$label: client exits non-zero (rc $rc)" test "$rc" -ne 0
  n=$(grep -c '^porthole: error: ' "$T_TMP/client-$label.log")
  ERR_LINE=$(grep '^porthole: error: ' "$T_TMP/client-$label.log" | head -n 1)
  log "$label: ${ERR_LINE:-<no error line>}"
  check "$label: exactly one 'porthole: error: ' line on stderr (got $n)" test "$n" -eq 1
  snapshot_ue "$T_TMP/ue-after-$label.txt"
  check "$label: ue link/addr/route state untouched" cmp -s "$T_TMP/ue-before-$label.txt" "$T_TMP/ue-after-$label.txt"
}

# 1. Without a proxy the concentrator is unreachable (fw drops the SYN to 198.18.2.2:443).
b_tcp=$(fw_counter_packets drop_tcp)
client_must_fail no-proxy
check "no-proxy: error says 'cannot reach the concentrator'" grep -q "cannot reach the concentrator" <<<"$ERR_LINE"
check_grew "no-proxy: the direct SYNs to $CONC_ADDR:443 were dropped by fw" drop_tcp "$b_tcp"

# 2. Through the proxy.
b_pxnew=$(fw_counter_packets px_new)
b_pxc=$(fw_counter_packets px_conc_new)
b_pxup=$(fw_counter_packets px_up)
b_tlsup=$(fw_counter_packets tls_up)
b_icmp=$(fw_counter_packets drop_icmp)
t0=$(now_s)
start_porthole ue1 --proxy "$PROXY_URL"
t_up=$(secs_since "$t0")
log "measured: client start -> 'tunnel up' through the proxy in ${t_up} s (incl. 0.1 s log polling)"
check "the client says it went through the proxy" grep -q "proxy $PROXY_ADDR:$PROXY_PORT" "$PORTHOLE_LOG"
check_grew "ue -> proxy:$PROXY_PORT connection opened" px_new "$b_pxnew"
check_grew "proxy -> $CONC_ADDR:443 connection opened" px_conc_new "$b_pxc"
check "ue has a host route to the proxy $PROXY_ADDR via $FW_UE_ADDR (not into the tunnel)" \
  grep -q "via $FW_UE_ADDR" <<<"$(ip -n "$NS_UE" route get "$PROXY_ADDR")"
addr=$(ue_tun_addr)
check "ue TUN has a pool address (got '${addr:-none}')" test "${addr%.*}" = 100.64.0
log "ping -c 5 $OPNET_ADDR through proxy + tunnel:"
ping_summary "$NS_UE" "$OPNET_ADDR" 5
check "ping through the tunnel: 5/5 (got $PING_RX)" test "$PING_RX" -eq 5
check_same "the pings did not reach fw as ICMP" drop_icmp "$b_icmp"
src=$T_TMP/payload.bin
head -c $((SIZE_MB * 1024 * 1024)) /dev/urandom >"$src"
want=$(sha256sum <"$src" | awk '{ print $1 }')
t1=$(now_s)
got=$(timeout 60 ip netns exec "$NS_UE" socat -t 30 -T 30 - "TCP4:$OPNET_ADDR:5001,connect-timeout=5" <"$src" 2>/dev/null | awk '{ print $1 }')
dt=$(secs_since "$t1")
log "measured: $SIZE_MB MiB to opnet:5001 through proxy + tunnel in ${dt} s ($(mb_per_s $((SIZE_MB * 1024 * 1024)) "$dt") MB/s)"
check "TCP transfer through proxy + tunnel: sha256 matches (${got:0:16}... vs ${want:0:16}...)" test "$got" = "$want"
check_grew "the tunnel crossed fw as ue <-> proxy traffic" px_up "$b_pxup"
check_grew "... and as proxy <-> concentrator TCP/443" tls_up "$b_tlsup"
stop_pid "$PORTHOLE_PID" INT 10 || fail "porthole did not exit within 10 s of SIGINT"
check "client exits 0 on SIGINT (rc $WAIT_RC)" test "$WAIT_RC" -eq 0

# 3. The proxy from the environment (lower- and upper-case), and --proxy none overriding it.
export https_proxy=$PROXY_URL
start_porthole ue1
check "https_proxy: tunnel up through the proxy" grep -q "proxy $PROXY_ADDR:$PROXY_PORT" "$PORTHOLE_LOG"
check "https_proxy: ping opnet" ping_ok "$NS_UE" "$OPNET_ADDR" 3
stop_pid "$PORTHOLE_PID" INT 10 || fail "porthole did not exit within 10 s of SIGINT"
client_must_fail proxy-none --proxy none
check "--proxy none ignores https_proxy: 'cannot reach the concentrator'" grep -q "cannot reach the concentrator" <<<"$ERR_LINE"
unset https_proxy
export HTTPS_PROXY=$PROXY_URL
start_porthole ue1
check "HTTPS_PROXY: tunnel up through the proxy" grep -q "proxy $PROXY_ADDR:$PROXY_PORT" "$PORTHOLE_LOG"
check "HTTPS_PROXY: ping opnet" ping_ok "$NS_UE" "$OPNET_ADDR" 3
stop_pid "$PORTHOLE_PID" INT 10 || fail "porthole did not exit within 10 s of SIGINT"
unset HTTPS_PROXY

# 4. The proxy's refusals, one clear line each.
client_must_fail no-credentials --proxy "http://$PROXY_ADDR:$PROXY_PORT"
check "no credentials: 'proxy $PROXY_ADDR:$PROXY_PORT refused the tunnel: 407'" \
  grep -q "proxy $PROXY_ADDR:$PROXY_PORT refused the tunnel: 407" <<<"$ERR_LINE"
client_must_fail wrong-password --proxy "http://$PROXY_USER:Xpw9bad@$PROXY_ADDR:$PROXY_PORT"
check "wrong password: 'refused the tunnel: 407' or '401' (tinyproxy answers 401 to bad credentials)" \
  grep -qE "proxy $PROXY_ADDR:$PROXY_PORT refused the tunnel: (407|401)" <<<"$ERR_LINE"
check "wrong password: the password is not echoed" ! grep -q "Xpw9bad" <<<"$ERR_LINE"
client_must_fail port-not-allowed --proxy "$PROXY_URL" --server "$CONC_ADDR:8443"
check "CONNECT to port 8443 (proxy allows only 443): 'refused the tunnel: 403'" \
  grep -q "proxy $PROXY_ADDR:$PROXY_PORT refused the tunnel: 403" <<<"$ERR_LINE"
b_tcp=$(fw_counter_packets drop_tcp)
client_must_fail proxy-unreachable --proxy "http://$PROXY_USER:$PROXY_PASS@$PROXY_ADDR:3129"
check "a proxy port fw drops: 'cannot reach the proxy $PROXY_ADDR:3129'" grep -q "cannot reach the proxy $PROXY_ADDR:3129" <<<"$ERR_LINE"
check_grew "proxy-unreachable: fw dropped the SYNs to :3129" drop_tcp "$b_tcp"

check "portholed still running" kill -0 "$PORTHOLED_PID"
check "the proxy still running" pid_alive "$(cat "$LAB_STATE_DIR/svc-proxy.pid" 2>/dev/null)"
# The lab is left in proxy-only mode; `close` brings the normal policy back.
bash "$LAB_SH" close >/dev/null 2>&1
check "lab.sh close restores the restrictive mode" test "$(cat "$LAB_STATE_DIR/mode" 2>/dev/null)" = restrictive
finish
