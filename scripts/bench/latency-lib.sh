# shellcheck shell=bash disable=SC2034
# Helpers for scripts/bench/latency.sh (latency under load). Sourced after scripts/bench/lib.sh;
# defines functions only. Everything acts inside the lab namespaces ($NS_*), never in the root
# namespace.

l_log() { b_log "$@"; }

# l_rtprobe_build: make $RTPROBE_BIN (CMake target porthole-rtprobe, src/tools/).
l_rtprobe_build() {
  RTPROBE_BIN=$BUILD_DIR/src/tools/porthole-rtprobe
  local out
  out=$(cmake --build "$BUILD_DIR" --target porthole-rtprobe 2>&1) || {
    tail -n 20 <<<"$out" >&2
    b_die "build of porthole-rtprobe failed"
  }
}

# l_cc_all NAME: make NAME the TCP congestion control of the lab's sockets. Sets L_CC_MODE:
#   sysctl  net.ipv4.tcp_congestion_control=NAME in every lab namespace (per-netns since Linux
#           4.15). A child namespace may only choose an algorithm of the host's
#           net.ipv4.tcp_allowed_congestion_control (global; we never change it), so e.g. cubic on
#           a host whose list is "reno bbr" fails with EPERM, and then:
#   route   `congctl NAME` on every IPv4 route of every lab namespace (ip route change, inside the
#           namespaces; not locked). The kernel applies a route's congctl at connect()/accept, so it
#           overrides a TCP_CONGESTION set *before* connect(); one set afterwards still wins.
# A program may pick its own per socket either way; the report shows what the sockets used.
l_cc_all() {
  local ns cc=$1 r ok=1
  for ns in "${LAB_NAMESPACES[@]}"; do
    lab_ns_exists "$ns" || continue
    nsx "$ns" sysctl -qw "net.ipv4.tcp_congestion_control=$cc" >/dev/null 2>&1 || { ok=0; break; }
  done
  if ((ok)); then L_CC_MODE=sysctl; return 0; fi
  nsx "$NS_UE" sysctl -qw "net.ipv4.tcp_congestion_control=$cc" >/dev/null 2>&1 && b_die "inconsistent sysctl results"
  l_log "net.ipv4.tcp_congestion_control=$cc refused in the lab namespaces (host's tcp_allowed_congestion_control: $(sysctl -n net.ipv4.tcp_allowed_congestion_control 2>/dev/null)); using 'congctl $cc' on the lab routes instead"
  for ns in "${LAB_NAMESPACES[@]}"; do
    lab_ns_exists "$ns" || continue
    while IFS= read -r r; do
      [[ -n $r ]] || continue
      # shellcheck disable=SC2086 # the route spec is a list of words
      nsx "$ns" ip -4 route change $r congctl "$cc" 2>/dev/null ||
        b_die "ip route change $r congctl $cc failed in $ns"
    done < <(nsx "$ns" ip -4 route show table main | sed 's/ congctl [a-z0-9_]*//; s/ linkdown//')
  done
  L_CC_MODE=route
}
L_CC_MODE=none

# l_bottleneck_add RATE BURST LIMIT: tbf on both of fw's lab-facing egresses (fw-conc: toward the
# concentrator = upstream; fw-ue: toward the ue = downstream). Only inside $NS_FW.
L_TBF_DEVS=(fw-conc fw-ue)
l_bottleneck_add() {
  local dev
  for dev in "${L_TBF_DEVS[@]}"; do
    nsx "$NS_FW" tc qdisc replace dev "$dev" root tbf rate "$1" burst "$2" limit "$3" ||
      b_die "tc qdisc tbf on $dev in $NS_FW failed"
  done
  L_TBF_ON=1
}
L_TBF_ON=0
# shellcheck disable=SC2317 # called from bench_cleanup via BENCH_EXTRA_CLEANUP
l_bottleneck_del() {
  local dev
  ((L_TBF_ON)) || return 0
  lab_ns_exists "$NS_FW" || return 0
  for dev in "${L_TBF_DEVS[@]}"; do nsx "$NS_FW" tc qdisc del dev "$dev" root 2>/dev/null; done
  L_TBF_ON=0
  return 0
}

# l_tbf_backlog DEV: bytes queued in fw's tbf on DEV now.
l_tbf_backlog() {
  nsx "$NS_FW" tc -s -j qdisc show dev "$1" 2>/dev/null |
    jq -r '[.[] | select(.kind == "tbf") | .backlog] | first // 0' 2>/dev/null || echo 0
}
# l_tbf_drops DEV: packets the tbf on DEV dropped so far.
l_tbf_drops() {
  nsx "$NS_FW" tc -s -j qdisc show dev "$1" 2>/dev/null |
    jq -r '[.[] | select(.kind == "tbf") | .drops] | first // 0' 2>/dev/null || echo 0
}

# l_sock NS FILTER: "RECVQ SENDQ NOTSENT RTT_MS CC SNDBUF" of the busiest established TCP socket matching
# the ss FILTER in NS (e.g. '( dport = :443 )'; busiest = most bytes acked + received, so an
# iperf3 data connection wins over its control connection); "0 0 0 0 - 0" if none.
# Recv-Q = received, not yet read by the program; Send-Q = not yet acknowledged (in flight +
# unsent); notsent = the part of Send-Q not yet sent; SNDBUF = the socket's send buffer size
# (skmem tb, autotuned unless the program set SO_SNDBUF).
l_sock() {
  nsx "$1" ss -Htnim state established "$2" 2>/dev/null | awk '
    /^[0-9]/ { rq = $1; sq = $2; next }
    {
      ns = 0; rtt = 0; cc = "-"; vol = 0; tb = 0
      for (i = 1; i <= NF; i++) {
        if ($i ~ /^notsent:/) { split($i, a, ":"); ns = a[2] }
        if ($i ~ /^rtt:/) { split($i, a, "[:/]"); rtt = a[2] }
        if ($i ~ /^bytes_(acked|received):/) { split($i, a, ":"); vol += a[2] }
        if ($i ~ /^skmem:/) { if (match($i, /tb[0-9]+/)) tb = substr($i, RSTART + 2, RLENGTH - 2) }
        if ($i ~ /^(cubic|bbr|bbr2|bbr3|reno|dctcp|vegas|westwood|htcp|bic)$/) cc = $i
      }
      if (!found || vol > best) { best = vol; found = 1; out = rq " " sq " " ns " " rtt " " cc " " tb }
    }
    END { print (found ? out : "0 0 0 0 - 0") }'
}

# l_qdisc_backlog NS DEV: bytes queued in DEV's root qdisc in NS (0 if none).
l_qdisc_backlog() {
  nsx "$1" tc -s -j qdisc show dev "$2" 2>/dev/null | jq -r '[.[].backlog // 0] | add // 0' 2>/dev/null || echo 0
}
# l_qdisc_drops NS DEV: packets dropped by DEV's qdiscs in NS so far (0 if none).
l_qdisc_drops() {
  nsx "$1" tc -s -j qdisc show dev "$2" 2>/dev/null | jq -r '[.[].drops // 0] | add // 0' 2>/dev/null || echo 0
}

# l_sampler OUT SECONDS [TUN]: every 0.5 s append one line of
#   1 tbf_up_bytes 2 tbf_down_bytes
#   3 ue_recvq 4 ue_sendq 5 ue_notsent 6 ue_rtt     (the tunnel client's TCP socket to :443)
#   7 conc_recvq 8 conc_sendq 9 conc_notsent 10 conc_rtt   (the server's socket from :443)
#   11 ue_tun_qdisc_bytes 12 conc_tun_qdisc_bytes 13 ue_sndbuf 14 conc_sndbuf 15 ue_cc 16 conc_cc
# for SECONDS.
l_sampler() {
  local out=$1 end=$((SECONDS + $2)) tun=${3:-} u c a b
  while ((SECONDS < end)); do
    u=$(l_sock "$NS_UE" '( dport = :443 )')
    c=$(l_sock "$NS_CONC" '( sport = :443 )')
    a=0 b=0
    [[ -n $tun ]] && { a=$(l_qdisc_backlog "$NS_UE" "$tun"); b=$(l_qdisc_backlog "$NS_CONC" "$tun"); }
    awk -v t1="$(l_tbf_backlog fw-conc)" -v t2="$(l_tbf_backlog fw-ue)" -v u="$u" -v c="$c" -v a="$a" -v b="$b" 'BEGIN {
      split(u, x, " "); split(c, y, " ")
      print t1, t2, x[1], x[2], x[3], x[4], y[1], y[2], y[3], y[4], a, b, x[6], y[6], x[5], y[5] }' >>"$out"
    sleep 0.5
  done
}

# l_wait PID SECONDS: wait for a process we started to exit (bounded), then forget it (b_stop).
l_wait() {
  local pid=$1 i
  for ((i = 0; i < $2 * 10; i++)); do
    pid_alive "$pid" || break
    sleep 0.1
  done
  b_stop "$pid" 2
}

# l_probe_pair TAG SECONDS UE_ADDR: one probe flow in each direction at the same time:
#   up:   rtprobe --send opnet:6001 from ue,   receiver in opnet on $OPNET_ADDR:6001
#   down: rtprobe --send UE_ADDR:6002 from opnet, receiver in ue on 0.0.0.0:6002
# Receiver output in $BENCH_WORK/probe-TAG-{up,down}.log. Blocks until both are done.
l_probe_pair() {
  local tag=$1 secs=$2 ue=$3 r_up r_down s_up s_down dscp=()
  [[ $PROBE_DSCP != none ]] && dscp=(--dscp "$PROBE_DSCP")
  b_start "$NS_OPNET" "$BENCH_WORK/probe-$tag-up.log" "$RTPROBE_BIN" --recv "$OPNET_ADDR:6001" --seconds $((secs + 12)) --trace "$BENCH_WORK/probe-$tag-up.trace"
  r_up=$B_PID
  b_start "$NS_UE" "$BENCH_WORK/probe-$tag-down.log" "$RTPROBE_BIN" --recv "0.0.0.0:6002" --seconds $((secs + 12)) --trace "$BENCH_WORK/probe-$tag-down.trace"
  r_down=$B_PID
  wait_listen_on "$NS_OPNET" u "$OPNET_ADDR" 6001 3 || l_log "  warning: probe receiver in $NS_OPNET not listening"
  wait_listen_on "$NS_UE" u 0.0.0.0 6002 3 || l_log "  warning: probe receiver in $NS_UE not listening"
  b_start "$NS_UE" "$BENCH_WORK/probe-$tag-up.send" "$RTPROBE_BIN" --send "$OPNET_ADDR:6001" \
    --rate "$PROBE_RATE" --size "$PROBE_SIZE" --seconds "$secs" "${dscp[@]}"
  s_up=$B_PID
  b_start "$NS_OPNET" "$BENCH_WORK/probe-$tag-down.send" "$RTPROBE_BIN" --send "$ue:6002" \
    --rate "$PROBE_RATE" --size "$PROBE_SIZE" --seconds "$secs" "${dscp[@]}"
  s_down=$B_PID
  l_wait "$s_up" $((secs + 5))
  l_wait "$s_down" $((secs + 5))
  l_wait "$r_up" 13
  l_wait "$r_down" 13
}

# l_probe_field TAG DIR KEY: KEY=value from the receiver's machine-readable line ("n/a" if none).
l_probe_field() {
  local v
  v=$(sed -n 's/^rtprobe: sent=/sent=/p' "$BENCH_WORK/probe-$1-$2.log" 2>/dev/null | tr ' ' '\n' |
    sed -n "s/^$3=//p" | head -n 1)
  [[ -z $v || $v == nan || $v == -nan ]] && v=n/a
  echo "$v"
}

# l_iperf_mbps JSON: receiver-side goodput in Mbit/s ("n/a" on failure).
l_iperf_mbps() {
  local v
  v=$(jq -r 'if .error then empty else .end.sum_received.bits_per_second // empty end' "$1" 2>/dev/null)
  if [[ -z $v ]]; then echo n/a; else awk -v b="$v" 'BEGIN { printf "%.2f", b / 1e6 }'; fi
}
l_iperf_retr() { jq -r '.end.sum_sent.retransmits // "n/a"' "$1" 2>/dev/null || echo n/a; }

# l_rate_bps "20mbit" -> 20000000 (tc units: bit, kbit, mbit, gbit).
l_rate_bps() {
  local r=${1,,}
  case $r in
    *gbit) echo $((${r%gbit} * 1000000000)) ;;
    *mbit) echo $((${r%mbit} * 1000000)) ;;
    *kbit) echo $((${r%kbit} * 1000)) ;;
    *bit) echo "${r%bit}" ;;
    *) b_die "rate '$1': use a tc rate in bit, kbit, mbit or gbit" ;;
  esac
}

# l_ms_of_bytes BYTES: queueing time of BYTES at the bottleneck rate, in ms.
l_ms_of_bytes() { awk -v b="$1" -v r="$RATE_BPS" 'BEGIN { if (b == "n/a") print "n/a"; else printf "%.0f", b * 8 / r * 1000 }'; }

# l_sample_means FILE: the mean of each numeric column of the sampler file (columns 1-14, see
# l_sampler) and the last congestion control names seen (15, 16).
l_sample_means() {
  awk '{ n++; for (i = 1; i <= 14; i++) s[i] += $i; uc = $15; cc = $16 }
       END { if (!n) { for (i = 1; i <= 14; i++) printf "n/a "; print "- -"; exit }
             for (i = 1; i <= 14; i++) printf "%.1f ", s[i] / n; printf "%s %s\n", uc, cc }' "$1" 2>/dev/null
}

# l_link_drops: "NS/IFACE RX_DROPPED TX_DROPPED" for every interface of the four core lab
# namespaces (the kernel's per-device drop counters).
l_link_drops() {
  local ns
  for ns in "${LAB_CORE_NAMESPACES[@]}"; do
    ip -n "$ns" -s -j link show 2>/dev/null |
      jq -r --arg ns "${ns#"$LAB_PREFIX"}" '.[] | "\($ns)/\(.ifname) \(.stats64.rx.dropped // 0) \(.stats64.tx.dropped // 0)"' 2>/dev/null
  done
}
# l_drops_delta BEFORE AFTER: "ns/if rx+N tx+M" for every counter that grew (or "none").
l_drops_delta() {
  awk 'NR == FNR { r[$1] = $2; t[$1] = $3; next }
       { dr = $2 - r[$1]; dt = $3 - t[$1]
         if (dr > 0 || dt > 0) { printf "%s%s%s%s", sep, $1, (dr > 0 ? " rx+" dr : ""), (dt > 0 ? " tx+" dt : ""); sep = ", " } }
       END { if (sep == "") printf "none" }' "$1" "$2"
}
# l_softnet_drops: packets dropped host-wide because a CPU's input backlog was full
# (/proc/net/softnet_stat column 2, summed over CPUs; includes other work on the machine).
l_softnet_drops() { awk '{ s += strtonum("0x" $2) } END { print s + 0 }' /proc/net/softnet_stat 2>/dev/null || echo 0; }

# l_snmp_drops: "NS/Proto:Field VALUE" lines for the IPv4/UDP drop and error counters of
# /proc/net/snmp in each core lab namespace (the file is per namespace). Same format as
# l_link_drops with the value in the rx column, so l_drops_delta compares them too.
l_snmp_drops() {
  local ns
  for ns in "${LAB_CORE_NAMESPACES[@]}"; do
    nsx "$ns" cat /proc/net/snmp 2>/dev/null | awk -v ns="${ns#"$LAB_PREFIX"}" '
      $1 == "Ip:" || $1 == "Udp:" {
        if (!($1 in hdr)) { hdr[$1] = $0; next }
        n = split(hdr[$1], h, " "); split($0, v, " ")
        for (i = 2; i <= n; i++)
          if (h[i] ~ /^(InDiscards|OutDiscards|OutNoRoutes|InAddrErrors|InHdrErrors|InErrors|RcvbufErrors|SndbufErrors|NoPorts)$/)
            print ns "/" substr($1, 1, length($1) - 1) ":" h[i], v[i], 0
      }'
  done
}
