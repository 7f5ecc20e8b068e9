#!/usr/bin/env bash
# shellcheck disable=SC2119
# A black-holed path: while the ue pings opnet through the tunnel, fw drops every forwarded
# packet for CUT_S seconds (`lab.sh cut`), then forwards again (`lab.sh restore`). With keep-alive
# 2 s and 3 missed intervals the client must notice within ~10 s ("connection lost"), keep its
# TUN device, address and routes while it retries, reconnect after the restore ("tunnel up
# again") with the same address, and the pings must resume. Prints the measured times.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_binaries
t_setup
make_pki

KEEPALIVE=2
MISSED=3
RECONNECT_MAX=4
CUT_S=${CUT_S:-20}
LOSS_LIMIT_S=10      # cut -> "connection lost"
RECONNECT_LIMIT_S=20 # restore -> "tunnel up again"

start_portholed --keepalive "$KEEPALIVE"
start_porthole ue1 --dead-after-missed "$MISSED" --reconnect-max "$RECONNECT_MAX"
addr_before=$(ue_tun_addr)
ifindex_before=$(ue_tun_ifindex)
check "ue TUN got $FIRST_UE_ADDR (got '${addr_before:-none}')" test "$addr_before" = "$FIRST_UE_ADDR"
check "ping through the tunnel works before the cut" ping_ok "$NS_UE" "$OPNET_ADDR" 2

# Watch the ue's links for the whole test: the TUN must never be deleted.
timeout $((CUT_S + 60)) ip -n "$NS_UE" monitor link </dev/null >"$T_TMP/link-monitor.txt" 2>&1 &
T_PIDS+=("$!")

# A long, bounded ping (every 0.2 s, at most (CUT_S + 40) s), timestamped with -D.
count=$(((CUT_S + 40) * 5))
start_pinger "$NS_UE" "$OPNET_ADDR" 0.2 "$count"
sleep 3
check "the background ping gets replies before the cut" test -n "$(pinger_last_reply "$PINGER_LOG")"

log "cutting the path for $CUT_S s (lab.sh cut)"
lost_before=$(log_count "$PORTHOLE_LOG" "connection lost")
bash "$LAB_SH" cut >/dev/null || fail "lab.sh cut failed"
t_cut=$(now_s)
if wait_for_log_count "$PORTHOLE_LOG" "connection lost" $((lost_before + 1)) $((LOSS_LIMIT_S + 5)) "$PORTHOLE_PID"; then
  detect_s=$(secs_since "$t_cut")
  log "client: $(grep -m1 'connection lost' "$PORTHOLE_LOG")"
else
  detect_s=none
fi
check "client logged 'connection lost' within $LOSS_LIMIT_S s of the cut (took ${detect_s} s)" \
  awk -v d="$detect_s" -v l="$LOSS_LIMIT_S" 'BEGIN { exit !(d != "none" && d <= l) }'
check "porthole is still running (retrying)" kill -0 "$PORTHOLE_PID"

# While the path is down: TUN, address and routes stay.
sleep 2
check "during the cut: TUN $UE_TUN still exists with ifindex $ifindex_before" test "$(ue_tun_ifindex)" = "$ifindex_before"
check "during the cut: TUN keeps $addr_before" test "$(ue_tun_addr)" = "$addr_before"
check "during the cut: 0.0.0.0/1 via $UE_TUN still present" grep -q "dev $UE_TUN" <<<"$(ip -n "$NS_UE" route show 0.0.0.0/1)"
last_before_gap=$(pinger_last_reply "$PINGER_LOG")

rest=$(awk -v c="$CUT_S" -v s="$(secs_since "$t_cut")" 'BEGIN { r = c - s; printf "%.1f", (r > 0 ? r : 0) }')
sleep "$rest"
bash "$LAB_SH" restore >/dev/null || fail "lab.sh restore failed"
t_restore=$(now_s)
log "path restored after $(awk -v a="$t_cut" -v b="$t_restore" 'BEGIN { printf "%.1f", b - a }') s"

if wait_for_log "$PORTHOLE_LOG" "tunnel up again" "$RECONNECT_LIMIT_S" "$PORTHOLE_PID"; then
  up_again_s=$(secs_since "$t_restore")
  log "client: $(grep -m1 'tunnel up again' "$PORTHOLE_LOG")"
else
  up_again_s=none
fi
check "client logged 'tunnel up again' within $RECONNECT_LIMIT_S s of the restore (took $up_again_s s)" test "$up_again_s" != none

first_reply=""
for ((i = 0; i < 150; i++)); do
  first_reply=$(pinger_first_reply_after "$PINGER_LOG" "$t_restore")
  [[ -n $first_reply ]] && break
  sleep 0.1
done
if [[ -n $first_reply ]]; then
  reply_s=$(awk -v a="$t_restore" -v b="$first_reply" 'BEGIN { printf "%.2f", b - a }')
  gap_s=$(awk -v a="${last_before_gap:-$t_cut}" -v b="$first_reply" 'BEGIN { printf "%.2f", b - a }')
else
  reply_s=none gap_s=none
fi
check "ping replies resume after the restore (first after $reply_s s)" test -n "$first_reply"
sleep 2
# SIGINT (timeout passes it on) makes ping print its statistics.
stop_pid "$PINGER_PID" INT 3 || kill_pid_tree "$PINGER_PID" 2

addr_after=$(ue_tun_addr)
check "client kept its address ($addr_before -> ${addr_after:-none})" test "$addr_after" = "$addr_before"
check "TUN never re-created (ifindex $ifindex_before -> $(ue_tun_ifindex))" test "$(ue_tun_ifindex)" = "$ifindex_before"
check "the link monitor saw no deletion of $UE_TUN" ! grep -E "^Deleted.*: ${UE_TUN}[:@]" "$T_TMP/link-monitor.txt"
check "0.0.0.0/1 via $UE_TUN after the reconnect" grep -q "dev $UE_TUN" <<<"$(ip -n "$NS_UE" route show 0.0.0.0/1)"
check "ping -c 3 through the tunnel after the reconnect" ping_ok "$NS_UE" "$OPNET_ADDR" 3
log "concentrator: $(grep -E 'session [0-9]+ \[ue1\]: (assigned|resumed)' "$PORTHOLED_LOG" | tail -n 1 | sed 's/^info: //')"
check "the concentrator gave ue1 $addr_before again" \
  grep -qE "session [0-9]+ \[ue1\]: (assigned|resumed) $addr_before/" <<<"$(grep -E 'session [0-9]+ \[ue1\]' "$PORTHOLED_LOG" | tail -n 1)"
check "portholed still running" kill -0 "$PORTHOLED_PID"
check "porthole still running" kill -0 "$PORTHOLE_PID"

sent=$(sed -n 's/^\([0-9]*\) packets transmitted.*/\1/p' "$PINGER_LOG")
rcvd=$(sed -n 's/.* \([0-9]*\) received.*/\1/p' "$PINGER_LOG")
log "RESULT: keep-alive ${KEEPALIVE} s x ${MISSED} missed, reconnect-max ${RECONNECT_MAX} s, cut ${CUT_S} s"
log "RESULT: cut -> 'connection lost'              ${detect_s} s"
log "RESULT: restore -> 'tunnel up again'          ${up_again_s} s"
log "RESULT: restore -> first ping reply           ${reply_s} s (reconnect time as the ue sees it)"
log "RESULT: ping gap (last reply -> next reply)   ${gap_s} s; ping ${rcvd:-?}/${sent:-?} replies overall"
log "RESULT: address before/after                  ${addr_before} / ${addr_after:-none}"
finish
