#!/usr/bin/env bash
# shellcheck disable=SC2119
# SIGINT makes the client remove its TUN device, addresses and routes and exit 0: the ue
# namespace's link/addr/route/rule state afterwards equals the state before it started.
# Also: SIGTERM on the concentrator exits 0 and removes its nft table inet porthole.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_binaries
t_setup
make_pki

snapshot_ue "$T_TMP/ue-before.txt"
start_portholed
start_porthole ue1

snapshot_ue "$T_TMP/ue-up.txt"
check "TUN $UE_TUN exists in ue while up" ip -n "$NS_UE" link show dev "$UE_TUN"
check "0.0.0.0/1 via $UE_TUN present" grep -q "dev $UE_TUN" <<<"$(ip -n "$NS_UE" route show 0.0.0.0/1)"
check "128.0.0.0/1 via $UE_TUN present" grep -q "dev $UE_TUN" <<<"$(ip -n "$NS_UE" route show 128.0.0.0/1)"
check "host route to $CONC_ADDR via $FW_UE_ADDR present" grep -q "via $FW_UE_ADDR" <<<"$(ip -n "$NS_UE" route show "$CONC_ADDR")"
check "the ue namespace state changed while up (sanity)" ! cmp -s "$T_TMP/ue-before.txt" "$T_TMP/ue-up.txt"
check "ping through the tunnel works before SIGINT" ping_ok "$NS_UE" "$OPNET_ADDR" 2

log "sending SIGINT to porthole (pid $PORTHOLE_PID)"
if stop_pid "$PORTHOLE_PID" INT 10; then
  check "porthole exited 0 after SIGINT (rc $WAIT_RC)" test "$WAIT_RC" -eq 0
else
  fail "porthole did not exit within 10 s of SIGINT"
fi
snapshot_ue "$T_TMP/ue-after.txt"
if cmp -s "$T_TMP/ue-before.txt" "$T_TMP/ue-after.txt"; then
  log "ok: ue link/addr/route/rule state after SIGINT equals the state before"
else
  log "FAIL: ue namespace state differs after SIGINT (before vs after):" >&2
  diff -u "$T_TMP/ue-before.txt" "$T_TMP/ue-after.txt" >&2
  T_FAILS=$((T_FAILS + 1))
fi
check "TUN $UE_TUN is gone" ! ip -n "$NS_UE" link show dev "$UE_TUN"
check "direct ping is blocked again (traffic no longer tunneled)" ! ping_ok "$NS_UE" "$OPNET_ADDR" 1
check "portholed survived the client leaving" kill -0 "$PORTHOLED_PID"

# A second client run after the first one works (nothing stale left behind).
start_porthole ue1
check "second client run: ping through the tunnel" ping_ok "$NS_UE" "$OPNET_ADDR" 2
stop_pid "$PORTHOLE_PID" TERM 10 || fail "porthole did not exit within 10 s of SIGTERM"
check "porthole exited 0 after SIGTERM (rc $WAIT_RC)" test "$WAIT_RC" -eq 0
snapshot_ue "$T_TMP/ue-after2.txt"
check "ue state after SIGTERM equals the state before" cmp -s "$T_TMP/ue-before.txt" "$T_TMP/ue-after2.txt"

# Concentrator: SIGTERM -> exit 0, table inet porthole and TUN removed.
check "portholed created nft table inet porthole" ip netns exec "$NS_CONC" nft list table inet porthole
stop_pid "$PORTHOLED_PID" TERM 10 || fail "portholed did not exit within 10 s of SIGTERM"
check "portholed exited 0 after SIGTERM (rc $WAIT_RC)" test "$WAIT_RC" -eq 0
check "portholed removed nft table inet porthole" ! ip netns exec "$NS_CONC" nft list table inet porthole
check "portholed removed its TUN $CONC_TUN" ! ip -n "$NS_CONC" link show dev "$CONC_TUN"
finish
