#!/usr/bin/env bash
# shellcheck disable=SC2119
# A real SIP call over UDP through the tunnel while fw drops every direct UDP datagram:
#  - SIPp UAS in opnet (198.18.3.2:5060, built-in `uas` scenario, RTP echo on port 6000);
#  - without the tunnel, the SIPp UAC in ue (bound to 198.18.1.2) fails: its INVITEs die at fw
#    (drop_udp grows) and never reach opnet;
#  - with the tunnel, the UAC (built-in `uac_pcap` scenario, bound to the TUN address) places 3
#    calls at 1 call/s; each call plays a G.711 A-law RTP stream (g711a.pcap, ~7 s) plus an RFC 2833
#    DTMF burst from the pcaps shipped with sip-tester to the UAS, which echoes them back.
# Asserts: the UAC and the UAS report 3 successful calls and 0 failed (exit code 0 and their stat
# CSVs), every RTP packet the UAC played arrived at opnet and the echoes came back to the ue
# (nft counters in opnet and ue, ≥ 98 %), fw's UDP drop counter did not move while tls_up grew.
# Bounded: each SIPp run has its own -timeout and an outer `timeout`.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_binaries
require_tool sipp sip-tester
PCAP_DIR=${PCAP_DIR:-/usr/share/sip-tester}
[[ -r $PCAP_DIR/g711a.pcap && -r $PCAP_DIR/dtmf_2833_1.pcap ]] ||
  fail "no g711a.pcap / dtmf_2833_1.pcap in $PCAP_DIR (Debian package sip-tester ships them)"
t_setup
make_pki
CALLS=3
RTP_PORT=6000

# pcap_packets FILE: number of records in a classic (little-endian) pcap file.
pcap_packets() {
  od -An -v -t u1 -w1 "$1" | awk '{ b[NR - 1] = $1 } END {
    off = 24; n = 0
    while (off + 16 <= NR) { incl = b[off+8] + 256 * (b[off+9] + 256 * (b[off+10] + 256 * b[off+11])); off += 16 + incl; n++ }
    print n }'
}
# csv_col FILE COLUMN: COLUMN's value in the last row of a SIPp -trace_stat CSV (';'-separated).
csv_col() {
  awk -F';' -v c="$2" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == c) k = i; next } { v = $k } END { print v }' "$1" 2>/dev/null
}
# ns_counter NS NAME: packets of the named counter in table inet sipcount of NS.
ns_counter() {
  ip netns exec "$1" nft list counter inet sipcount "$2" 2>/dev/null |
    awk '/packets/ { for (i = 1; i < NF; i++) if ($i == "packets") p = $(i+1) } END { print p + 0 }'
}

per_call=$(($(pcap_packets "$PCAP_DIR/g711a.pcap") + $(pcap_packets "$PCAP_DIR/dtmf_2833_1.pcap")))
log "each call plays $per_call RTP packets (g711a.pcap + dtmf_2833_1.pcap)"

# Packet counters in the lab's own namespaces (opnet: what the UAS got and sent; ue: what came back).
ip netns exec "$NS_OPNET" nft -f - <<EOF || fail "cannot install the counters in $NS_OPNET"
table inet sipcount {
  counter sip_in { }
  counter sip_out { }
  counter rtp_in { }
  counter rtp_out { }
  chain input { type filter hook input priority 0; policy accept;
    udp dport 5060 counter name sip_in
    udp dport $RTP_PORT counter name rtp_in
  }
  chain output { type filter hook output priority 0; policy accept;
    udp sport 5060 counter name sip_out
    udp sport $RTP_PORT counter name rtp_out
  }
}
EOF
ip netns exec "$NS_UE" nft -f - <<EOF || fail "cannot install the counters in $NS_UE"
table inet sipcount {
  counter sip_back { }
  counter rtp_back { }
  chain input { type filter hook input priority 0; policy accept;
    ip saddr $OPNET_ADDR udp sport 5060 counter name sip_back
    ip saddr $OPNET_ADDR udp sport $RTP_PORT counter name rtp_back
  }
}
EOF

# The UAS answers CALLS calls (with RTP echo) and then exits; bounded by -timeout and timeout.
mkdir -p "$T_TMP/uas" "$T_TMP/direct" "$T_TMP/tunnel"
ln -s "$PCAP_DIR" "$T_TMP/tunnel/pcap"   # uac_pcap plays pcap/g711a.pcap, pcap/dtmf_2833_1.pcap
bg_in "$NS_OPNET" "$T_TMP/uas.log" timeout 75 sipp -sn uas -i "$OPNET_ADDR" -p 5060 -mp "$RTP_PORT" -rtp_echo \
  -m "$CALLS" -timeout 70s -nostdin -trace_stat -stf "$T_TMP/uas/uas.csv" -trace_screen -screen_file "$T_TMP/uas/uas.screen"
UAS_PID=$LAST_PID
wait_listen "$NS_OPNET" u 5060 5 || fail "SIPp UAS did not bind UDP 5060 in $NS_OPNET"
log "SIPp UAS up in $NS_OPNET ($OPNET_ADDR:5060, RTP echo :$RTP_PORT, pid $UAS_PID)"

# 1. No tunnel: the same UAC, bound to the ue's own address, gets nowhere (direct UDP is dropped).
b_drop=$(fw_counter_packets drop_udp)
t0=$(now_s)
(cd "$T_TMP/direct" && timeout 30 ip netns exec "$NS_UE" sipp -sn uac "$OPNET_ADDR:5060" -i "$UE_ADDR" -p 5060 \
  -m 1 -r 1 -timeout 15s -timeout_error -recv_timeout 5s -nostdin -trace_stat -stf "$T_TMP/direct/uac.csv" \
  </dev/null >"$T_TMP/direct/uac.out" 2>&1)
rc=$?
log "without the tunnel: sipp UAC exit code $rc after $(secs_since "$t0") s, successful $(csv_col "$T_TMP/direct/uac.csv" 'SuccessfulCall(C)'), failed $(csv_col "$T_TMP/direct/uac.csv" 'FailedCall(C)')"
check "without the tunnel the call fails (sipp exit code $rc != 0)" test "$rc" -ne 0
check "without the tunnel: 0 successful calls" test "$(csv_col "$T_TMP/direct/uac.csv" 'SuccessfulCall(C)')" = 0
check_grew "without the tunnel the INVITEs were dropped by fw" drop_udp "$b_drop"
check "without the tunnel no SIP reached opnet (sip_in $(ns_counter "$NS_OPNET" sip_in))" test "$(ns_counter "$NS_OPNET" sip_in)" -eq 0

# 2. Through the tunnel.
start_portholed
start_porthole ue1
tun=$(ue_tun_addr)
[[ -n $tun ]] || fail "the client's TUN has no IPv4 address"
b_drop=$(fw_counter_packets drop_udp)
b_drop6=$(fw_counter_packets drop6_udp)
b_up=$(fw_counter_packets tls_up)
b_upb=$(fw_counter_bytes tls_up)
t0=$(now_s)
(cd "$T_TMP/tunnel" && timeout 50 ip netns exec "$NS_UE" sipp -sn uac_pcap "$OPNET_ADDR:5060" -i "$tun" -p 5060 \
  -mp "$RTP_PORT" -m "$CALLS" -r 1 -l "$CALLS" -timeout 40s -timeout_error -recv_timeout 10s -nostdin \
  -trace_stat -stf "$T_TMP/tunnel/uac.csv" -trace_screen -screen_file "$T_TMP/tunnel/uac.screen" \
  </dev/null >"$T_TMP/tunnel/uac.out" 2>&1)
rc=$?
dt=$(secs_since "$t0")
ok_calls=$(csv_col "$T_TMP/tunnel/uac.csv" 'SuccessfulCall(C)')
bad_calls=$(csv_col "$T_TMP/tunnel/uac.csv" 'FailedCall(C)')
log "through the tunnel ($tun): sipp UAC exit code $rc after $dt s: successful ${ok_calls:-?}, failed ${bad_calls:-?}," \
  "average call length $(csv_col "$T_TMP/tunnel/uac.csv" 'CallLength(C)')"
check "UAC: sipp exit code 0 (all calls successful; got $rc)" test "$rc" -eq 0
check "UAC: $CALLS successful calls (got '${ok_calls:-none}')" test "${ok_calls:-x}" = "$CALLS"
check "UAC: 0 failed calls (got '${bad_calls:-none}')" test "${bad_calls:-x}" = 0
if ((rc != 0)) && [[ -s $T_TMP/tunnel/uac.screen ]]; then sed 's/^/    /' "$T_TMP/tunnel/uac.screen" | head -n 30 >&2; fi

wait_exit "$UAS_PID" 20 || { log "FAIL: SIPp UAS still running 20 s after the calls" >&2; T_FAILS=$((T_FAILS + 1)); WAIT_RC=x; }
uas_ok=$(csv_col "$T_TMP/uas/uas.csv" 'SuccessfulCall(C)')
log "UAS: exit code $WAIT_RC, successful ${uas_ok:-?}, failed $(csv_col "$T_TMP/uas/uas.csv" 'FailedCall(C)')"
check "UAS: exit code 0 (got $WAIT_RC)" test "$WAIT_RC" = 0
check "UAS: $CALLS successful calls (got '${uas_ok:-none}')" test "${uas_ok:-x}" = "$CALLS"

rtp_in=$(ns_counter "$NS_OPNET" rtp_in)
rtp_out=$(ns_counter "$NS_OPNET" rtp_out)
rtp_back=$(ns_counter "$NS_UE" rtp_back)
sip_in=$(ns_counter "$NS_OPNET" sip_in)
sip_back=$(ns_counter "$NS_UE" sip_back)
want=$((CALLS * per_call))
log "RTP: UAC played $want packets; opnet received $rtp_in, echoed $rtp_out; ue got $rtp_back echoes back" \
  "($(awk -v a="$rtp_back" -v w="$want" 'BEGIN { printf "%.1f", w ? 100 * (w - a) / w : 0 }') % round-trip loss)"
log "SIP: opnet received $sip_in datagrams, ue got $sip_back back"
check "RTP reached opnet: $rtp_in >= 98 % of $want" test $((rtp_in * 100)) -ge $((want * 98))
check "the UAS echoed what it got ($rtp_out of $rtp_in)" test "$rtp_out" -ge "$rtp_in"
check "RTP echoes reached the ue: $rtp_back >= 98 % of $want" test $((rtp_back * 100)) -ge $((want * 98))
check "SIP crossed the tunnel both ways (opnet got $sip_in, ue got $sip_back)" test "$sip_in" -gt 0 -a "$sip_back" -gt 0
check_same "fw saw none of the SIP/RTP datagrams as UDP" drop_udp "$b_drop"
check_same "... nor as IPv6 UDP" drop6_udp "$b_drop6"
check_grew "they crossed fw inside TCP/443" tls_up "$b_up"
upb=$(($(fw_counter_bytes tls_up) - b_upb))
log "fw tls_up grew by $upb bytes during the calls"
check "portholed still running" kill -0 "$PORTHOLED_PID"
check "porthole still running" kill -0 "$PORTHOLE_PID"
finish
