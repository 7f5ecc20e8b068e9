#!/usr/bin/env bash
# shellcheck disable=SC2119
# The concentrator looks like an ordinary web server to a TLS client that speaks HTTP:
#  - curl from ue, through fw to 198.18.2.2:443 (as https://concentrator.lab/, trusting the lab CA,
#    no client certificate), gets "HTTP/1.1 200 OK" with a text/html page; curl -v shows ALPN
#    http/1.1 accepted; the server closes the connection after the answer (openssl s_client,
#    which never closes first, ends on its own);
#  - portholed is still running afterwards and a real client still connects and pings;
#  - restarted with --decoy-dir DIR, portholed serves DIR/index.html byte for byte.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_binaries
require_tool curl
"$PORTHOLED_BIN" --help 2>&1 | grep -q -- '--decoy-dir' ||
  fail "this portholed has no --decoy-dir option (decoy web page support missing in $PORTHOLED_BIN)"
t_setup
make_pki
URL=https://concentrator.lab/

# fetch LABEL: curl -v from ue to $URL (resolved to $CONC_ADDR), bounded. Sets CURL_RC, CODE, CTYPE;
# the body is $T_TMP/LABEL.html, curl's -v output $T_TMP/LABEL.err.
fetch() {
  local label=$1 t0
  t0=$(now_s)
  timeout 20 ip netns exec "$NS_UE" curl -sS -v --max-time 10 --cacert "$PKI/ca.pem" \
    --resolve "concentrator.lab:443:$CONC_ADDR" -o "$T_TMP/$label.html" -w '%{http_code} %{content_type}\n' \
    "$URL" </dev/null >"$T_TMP/$label.out" 2>"$T_TMP/$label.err"
  CURL_RC=$?
  CODE="" CTYPE=""
  read -r CODE CTYPE <"$T_TMP/$label.out"
  log "$label: curl rc $CURL_RC, HTTP ${CODE:-none}, Content-Type '${CTYPE:-none}', $(wc -c <"$T_TMP/$label.html" 2>/dev/null || echo 0) bytes in $(secs_since "$t0") s"
  grep -E '^\* ALPN|^< HTTP/|^< Connection|^\* Closing|left intact' "$T_TMP/$label.err" | sed 's/^/    /'
}

# check_page LABEL: the common assertions on a fetch.
check_page() {
  local label=$1
  check "$label: curl succeeded (rc $CURL_RC)" test "$CURL_RC" -eq 0
  check "$label: HTTP 200 (got '${CODE:-none}')" test "${CODE:-x}" = 200
  check "$label: status line 'HTTP/1.1 200 OK'" grep -q '^< HTTP/1.1 200 OK' "$T_TMP/$label.err"
  check "$label: Content-Type text/html (got '${CTYPE:-none}')" grep -q '^text/html' <<<"$CTYPE"
  check "$label: the body is an HTML page" grep -qi '<html' "$T_TMP/$label.html"
  check "$label: curl -v shows ALPN http/1.1 accepted" grep -qE 'ALPN.*server accepted.*http/1\.1' "$T_TMP/$label.err"
  check "$label: curl -v shows the connection closed ('Closing connection')" grep -q 'Closing connection' "$T_TMP/$label.err"
}

start_portholed

# 1. The built-in page, from ue through fw.
b_new=$(fw_counter_packets tls_new)
fetch builtin
check_page builtin
check_grew "builtin: the request crossed fw as TCP/443" tls_new "$b_new"

# The server ends the connection after the answer: s_client -quiet never closes first.
t0=$(now_s)
printf 'GET / HTTP/1.1\r\nHost: concentrator.lab\r\n\r\n' |
  timeout 10 ip netns exec "$NS_UE" openssl s_client -quiet -connect "$CONC_ADDR:443" -servername concentrator.lab \
    -alpn http/1.1 -CAfile "$PKI/ca.pem" >"$T_TMP/s_client.out" 2>"$T_TMP/s_client.err"
rc=$?
log "openssl s_client: rc $rc after $(secs_since "$t0") s, first line '$(head -n 1 "$T_TMP/s_client.out" | tr -d '\r')'"
check "the server closed the connection after the answer (s_client ended by itself, rc $rc)" test "$rc" -ne 124
check "s_client got 'HTTP/1.1 200 OK'" grep -q '^HTTP/1.1 200 OK' "$T_TMP/s_client.out"

check "portholed still running after the web visitors" kill -0 "$PORTHOLED_PID"
start_porthole ue1
check "a real client still connects and pings opnet" ping_ok "$NS_UE" "$OPNET_ADDR" 3
stop_pid "$PORTHOLE_PID" INT 10 || fail "porthole did not exit within 10 s of SIGINT"

# 2. --decoy-dir: a page of our own, served byte for byte.
mkdir -p "$T_TMP/decoy"
token="porthole-decoy-$$-$RANDOM"
cat >"$T_TMP/decoy/index.html" <<EOF
<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Lab intranet</title></head>
<body><p>$token</p></body></html>
EOF
stop_pid "$PORTHOLED_PID" TERM 10 || fail "portholed did not exit within 10 s of SIGTERM"
check "portholed exited 0 on SIGTERM (rc $WAIT_RC)" test "$WAIT_RC" -eq 0
start_portholed --decoy-dir "$T_TMP/decoy"
fetch custom
check_page custom
check "custom: the body is DIR/index.html byte for byte" cmp -s "$T_TMP/decoy/index.html" "$T_TMP/custom.html"
check "custom: the page carries our token" grep -q "$token" "$T_TMP/custom.html"

# A few visitors in a row, then the VPN still works.
for i in 1 2 3; do fetch "again$i" >/dev/null; check "visitor $i: HTTP 200" test "${CODE:-x}" = 200; done
check "portholed still running" kill -0 "$PORTHOLED_PID"
start_porthole ue1
check "a real client still connects and pings opnet (decoy-dir portholed)" ping_ok "$NS_UE" "$OPNET_ADDR" 3
check "porthole still running" kill -0 "$PORTHOLE_PID"
finish
