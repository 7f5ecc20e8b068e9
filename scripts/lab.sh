#!/usr/bin/env bash
# porthole lab: five network namespaces, a restrictive firewall in the middle.
#
#  [ue] ue-fw 198.18.1.2/24 --- fw-ue 198.18.1.1/24 [fw] fw-conc 198.18.2.1/24 --- conc-fw 198.18.2.2/24 [conc] conc-op 198.18.3.1/24 --- op-conc 198.18.3.2/24 [opnet]
#          fd00:18:1::2/64        fd00:18:1::1/64      fd00:18:2::1/64          fd00:18:2::2/64        fd00:18:3::1/64          fd00:18:3::2/64
#                                                 [fw] fw-px 198.18.4.1/24 + fd00:18:4::1/64 --- px-fw 198.18.4.2/24 + fd00:18:4::2/64 [proxy]
#
#  ue     the device (runs `porthole connect`)      default via 198.18.1.1 / fd00:18:1::1
#  fw     restrictive firewall (nft table inet labfw): forwards ONLY new TCP to
#         198.18.2.2:443 / [fd00:18:2::2]:443 from the ue side, plus established/related
#  conc   the concentrator (runs `portholed`)        default via 198.18.2.1 / fd00:18:2::1, forwards
#  opnet  operator-network services on 198.18.3.2 and fd00:18:3::2, default via 198.18.3.1 / fd00:18:3::1
#           UDP 7 echo, TCP 5001 sha256-of-stream, TCP 5002 "send N bytes",
#           TCP 80 tiny HTTP, TCP 5003 "tell me my source address"
#  proxy  HTTP CONNECT proxy (tinyproxy) on TCP 3128, Basic auth lab/labpass, CONNECT only to
#         port 443; default via 198.18.4.1 / fd00:18:4::1. Reachable only in proxy-only mode.
#
# Both families are on the six lab links; IPv6 addresses are static ULAs (nodad), router
# advertisements are ignored, and the firewall applies the same policy to IPv6 as to IPv4.
#
# Usage: scripts/lab.sh up|down|status|open|close|proxy-only|check|cut|restore
#   up      create namespaces, links, routes, firewall, opnet services; then `check`
#   down    remove everything (idempotent): processes in the namespaces, namespaces, state dir
#   status  namespaces, services, firewall mode and counters
#   open    firewall forwards everything (raw-routing baseline for benchmarks)
#   close   restore the restrictive firewall
#   proxy-only  firewall lets the ue reach ONLY the proxy (TCP 3128) and only the proxy reach the
#           concentrator's TCP 443 ("restrictive access network type II"); then `check`
#   check   prove the firewall mode in force (restrictive: direct access blocked, TCP/443 passes;
#           proxy-only: direct TCP/443 blocked, CONNECT through the proxy works) for IPv4 and IPv6
#   cut     fw drops everything it forwards (black-holed path, both families); `restore` undoes it
# Environment: LAB_PREFIX (default empty) prefixes the namespace names, e.g. LAB_PREFIX=t1_.
set -uo pipefail

LAB_SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib/common.sh
source "$LAB_SCRIPT_DIR/lib/common.sh"

say() { printf '%s\n' "$*"; }
step() { printf '  %-62s' "$*"; }
ok() { printf 'ok\n'; }

# ---------------------------------------------------------------- firewall rulesets
nft_counters_decl() {
  local c
  for c in "${LAB_FW_COUNTERS[@]}"; do printf '  counter %s { }\n' "$c"; done
}

fw_ruleset_restrictive() {
  cat <<EOF
table inet labfw { }
delete table inet labfw
table inet labfw {
$(nft_counters_decl)
  chain forward {
    type filter hook forward priority filter; policy drop;
    ct state established,related ip daddr $CONC_ADDR tcp dport 443 counter name tls_up accept
    ct state established,related ip saddr $CONC_ADDR tcp sport 443 counter name tls_down accept
    ct state established,related ip6 daddr $CONC_ADDR6 tcp dport 443 counter name tls6_up accept
    ct state established,related ip6 saddr $CONC_ADDR6 tcp sport 443 counter name tls6_down accept
    ct state established,related counter name est_other accept
    iifname "fw-ue" ip daddr $CONC_ADDR tcp dport 443 counter name tls_new accept
    iifname "fw-ue" ip6 daddr $CONC_ADDR6 tcp dport 443 counter name tls6_new accept
    iifname "fw-ue" meta nfproto ipv4 meta l4proto udp counter name drop_udp drop
    iifname "fw-ue" meta nfproto ipv4 meta l4proto icmp counter name drop_icmp drop
    iifname "fw-ue" meta nfproto ipv4 meta l4proto tcp counter name drop_tcp drop
    iifname "fw-ue" meta nfproto ipv6 meta l4proto udp counter name drop6_udp drop
    iifname "fw-ue" meta nfproto ipv6 meta l4proto ipv6-icmp counter name drop6_icmp drop
    iifname "fw-ue" meta nfproto ipv6 meta l4proto tcp counter name drop6_tcp drop
    meta nfproto ipv6 counter name drop_ipv6 drop
    counter name drop_other drop
  }
  chain input {
    type filter hook input priority filter; policy accept;
    iifname "lo" accept
    ct state established,related accept
    # IPv6 neighbour discovery with the ue (link-local scope, never forwarded) must work, or
    # nothing IPv6 gets through; router solicitations and MLD reports are dropped uncounted.
    iifname "fw-ue" icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } ip6 hoplimit 255 counter name in_nd6 accept
    iifname "fw-ue" icmpv6 type { nd-router-solicit, mld-listener-report, mld2-listener-report } drop
    iifname "fw-ue" counter name in_drop_ue drop
  }
}
EOF
}

fw_ruleset_open() {
  cat <<EOF
table inet labfw { }
delete table inet labfw
table inet labfw {
$(nft_counters_decl)
  chain forward {
    type filter hook forward priority filter; policy accept;
    counter name fwd_open accept
  }
}
EOF
}

# proxy-only (3GPP TS 24.322 "restrictive access network type II"): the ue reaches nothing but
# the HTTP proxy (TCP 3128), and only the proxy may open TCP to the concentrator's port 443.
fw_ruleset_proxy_only() {
  cat <<EOF
table inet labfw { }
delete table inet labfw
table inet labfw {
$(nft_counters_decl)
  chain forward {
    type filter hook forward priority filter; policy drop;
    ct state established,related ip daddr $CONC_ADDR tcp dport 443 counter name tls_up accept
    ct state established,related ip saddr $CONC_ADDR tcp sport 443 counter name tls_down accept
    ct state established,related ip6 daddr $CONC_ADDR6 tcp dport 443 counter name tls6_up accept
    ct state established,related ip6 saddr $CONC_ADDR6 tcp sport 443 counter name tls6_down accept
    ct state established,related ip daddr $PROXY_ADDR tcp dport $PROXY_PORT counter name px_up accept
    ct state established,related ip saddr $PROXY_ADDR tcp sport $PROXY_PORT counter name px_down accept
    ct state established,related ip6 daddr $PROXY_ADDR6 tcp dport $PROXY_PORT counter name px6_up accept
    ct state established,related ip6 saddr $PROXY_ADDR6 tcp sport $PROXY_PORT counter name px6_down accept
    ct state established,related counter name est_other accept
    iifname "fw-ue" ip daddr $PROXY_ADDR tcp dport $PROXY_PORT counter name px_new accept
    iifname "fw-ue" ip6 daddr $PROXY_ADDR6 tcp dport $PROXY_PORT counter name px6_new accept
    iifname "fw-px" ip saddr $PROXY_ADDR ip daddr $CONC_ADDR tcp dport 443 counter name px_conc_new accept
    iifname "fw-px" ip6 saddr $PROXY_ADDR6 ip6 daddr $CONC_ADDR6 tcp dport 443 counter name px_conc6_new accept
    iifname "fw-ue" meta nfproto ipv4 meta l4proto udp counter name drop_udp drop
    iifname "fw-ue" meta nfproto ipv4 meta l4proto icmp counter name drop_icmp drop
    iifname "fw-ue" meta nfproto ipv4 meta l4proto tcp counter name drop_tcp drop
    iifname "fw-ue" meta nfproto ipv6 meta l4proto udp counter name drop6_udp drop
    iifname "fw-ue" meta nfproto ipv6 meta l4proto ipv6-icmp counter name drop6_icmp drop
    iifname "fw-ue" meta nfproto ipv6 meta l4proto tcp counter name drop6_tcp drop
    meta nfproto ipv6 counter name drop_ipv6 drop
    counter name drop_other drop
  }
  chain input {
    type filter hook input priority filter; policy accept;
    iifname "lo" accept
    ct state established,related accept
    iifname "fw-ue" icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } ip6 hoplimit 255 counter name in_nd6 accept
    iifname "fw-ue" icmpv6 type { nd-router-solicit, mld-listener-report, mld2-listener-report } drop
    iifname "fw-ue" counter name in_drop_ue drop
  }
}
EOF
}

fw_apply() { # restrictive|open|proxy-only
  local mode=$1
  case $mode in
    open) fw_ruleset_open ;;
    proxy-only) fw_ruleset_proxy_only ;;
    *) fw_ruleset_restrictive ;;
  esac | nsx "$NS_FW" nft -f - || lab_die "nft failed to load the $mode ruleset in namespace $NS_FW"
  echo "$mode" >"$LAB_STATE_DIR/mode"
}

# ---------------------------------------------------------------- proxy namespace
# tinyproxy in the foreground (-d) in the proxy namespace, config in the state dir, PID in
# svc-proxy.pid like the opnet services (so `status` shows it and `down` kills it by PID). Without
# tinyproxy the namespace is still created and `proxy-only` refuses to run.
PROXY_CONF=$LAB_STATE_DIR/tinyproxy.conf
start_proxy() {
  command -v tinyproxy >/dev/null 2>&1 || return 1
  cat >"$PROXY_CONF" <<EOF
# porthole lab HTTP proxy (generated by lab.sh; runs as root in namespace $NS_PROXY)
Port $PROXY_PORT
Timeout 600
MaxClients 50
LogLevel Info
DisableViaHeader Yes
Allow 127.0.0.1
Allow ::1
Allow 198.18.1.0/24
Allow fd00:18:1::/64
BasicAuth $PROXY_USER $PROXY_PASS
ConnectPort 443
EOF
  setsid ip netns exec "$NS_PROXY" tinyproxy -d -c "$PROXY_CONF" </dev/null >>"$LAB_STATE_DIR/svc-proxy.log" 2>&1 &
  echo "$!" >"$LAB_STATE_DIR/svc-proxy.pid"
  wait_listen_on "$NS_PROXY" t "$PROXY_ADDR" "$PROXY_PORT" 5 ||
    lab_die "the proxy (tinyproxy) did not start: $(tail -n 1 "$LAB_STATE_DIR/svc-proxy.log" 2>/dev/null)"
}

# ---------------------------------------------------------------- opnet services
start_service() { # NAME PROTO(t|u) BIND-ADDR PORT socat-args...
  local name=$1 proto=$2 addr=$3 port=$4 pid
  shift 4
  addr=${addr#[}; addr=${addr%]}
  setsid ip netns exec "$NS_OPNET" socat "$@" </dev/null >>"$LAB_STATE_DIR/svc-$name.log" 2>&1 &
  pid=$!
  echo "$pid" >"$LAB_STATE_DIR/svc-$name.pid"
  wait_listen_on "$NS_OPNET" "$proto" "$addr" "$port" 5 ||
    lab_die "opnet service '$name' did not start: $(tail -n 1 "$LAB_STATE_DIR/svc-$name.log" 2>/dev/null)"
}

# Each service runs twice: on $OPNET_ADDR (svc-NAME) and on [$OPNET_ADDR6] (svc-NAME-v6), each
# its own socat process group with its own PID file.
start_services() {
  local fam a sfx
  for fam in 4 6; do
    if [[ $fam == 4 ]]; then a=$OPNET_ADDR sfx=""; else a="[$OPNET_ADDR6]" sfx=-v6; fi
    start_service "udp-echo$sfx" u "$a" 7 -T 3 "UDP$fam-RECVFROM:7,bind=$a,fork" PIPE
    start_service "tcp-sha256$sfx" t "$a" 5001 "TCP$fam-LISTEN:5001,bind=$a,reuseaddr,fork" SYSTEM:sha256sum
    # socat parses ( ) [ ] { } : , and backslashes in addresses, so these commands avoid them.
    # shellcheck disable=SC2016 # these $ expand in the service's shell, not here
    start_service "tcp-source$sfx" t "$a" 5002 "TCP$fam-LISTEN:5002,bind=$a,reuseaddr,fork" \
      'SYSTEM:read n; head -c "$n" /dev/zero'
    start_service "tcp-http$sfx" t "$a" 80 "TCP$fam-LISTEN:80,bind=$a,reuseaddr,fork" \
      'SYSTEM:echo HTTP/1.0 200 OK; echo; echo opnet'
    # shellcheck disable=SC2016
    start_service "tcp-peer$sfx" t "$a" 5003 "TCP$fam-LISTEN:5003,bind=$a,reuseaddr,fork" 'SYSTEM:echo "$SOCAT_PEERADDR"'
  done
}

# ---------------------------------------------------------------- up / down
lab_up() {
  lab_require_root
  lab_require_tools "${LAB_TOOLS[@]}"
  if lab_any_ns_exists; then
    lab_die "lab '${LAB_PREFIX:-default}' already exists (namespace(s) present); run 'LAB_PREFIX=$LAB_PREFIX $0 down' first"
  fi
  LAB_UP_DONE=0
  trap '[[ $LAB_UP_DONE == 1 ]] || { echo "lab: error: setup failed, removing the partial lab" >&2; lab_down >/dev/null 2>&1; }' EXIT
  set -e
  mkdir -p "$LAB_STATE_DIR"
  say "== porthole lab up (prefix '${LAB_PREFIX}', namespaces: ${LAB_NAMESPACES[*]})"

  step "namespaces"
  local ns
  for ns in "${LAB_NAMESPACES[@]}"; do
    ip netns add "$ns"
    nsx "$ns" ip link set lo up
  done
  ok

  step "veth links"
  ip link add ue-fw netns "$NS_UE" type veth peer name fw-ue netns "$NS_FW"
  ip link add fw-conc netns "$NS_FW" type veth peer name conc-fw netns "$NS_CONC"
  ip link add conc-op netns "$NS_CONC" type veth peer name op-conc netns "$NS_OPNET"
  ip link add fw-px netns "$NS_FW" type veth peer name px-fw netns "$NS_PROXY"
  ok

  step "addresses (IPv4 + IPv6 ULA, nodad, no RA), forwarding"
  local pair link
  while IFS= read -r pair; do
    link=${pair#*:}
    # static addresses only: no SLAAC/RA, no DAD delay, no router solicitations
    nsx "${pair%%:*}" sysctl -qw "net.ipv6.conf.$link.disable_ipv6=0" "net.ipv6.conf.$link.accept_ra=0" \
      "net.ipv6.conf.$link.accept_dad=0" "net.ipv6.conf.$link.router_solicitations=0" \
      "net.ipv6.conf.$link.autoconf=0" >/dev/null
  done < <(lab_links)
  nsx "$NS_UE" ip addr add "$UE_ADDR/24" dev ue-fw
  nsx "$NS_FW" ip addr add "$FW_UE_ADDR/24" dev fw-ue
  nsx "$NS_FW" ip addr add "$FW_CONC_ADDR/24" dev fw-conc
  nsx "$NS_CONC" ip addr add "$CONC_ADDR/24" dev conc-fw
  nsx "$NS_CONC" ip addr add "$CONC_OP_ADDR/24" dev conc-op
  nsx "$NS_OPNET" ip addr add "$OPNET_ADDR/24" dev op-conc
  nsx "$NS_FW" ip addr add "$FW_PX_ADDR/24" dev fw-px
  nsx "$NS_PROXY" ip addr add "$PROXY_ADDR/24" dev px-fw
  nsx "$NS_UE" ip addr add "$UE_ADDR6/64" dev ue-fw nodad
  nsx "$NS_FW" ip addr add "$FW_UE_ADDR6/64" dev fw-ue nodad
  nsx "$NS_FW" ip addr add "$FW_CONC_ADDR6/64" dev fw-conc nodad
  nsx "$NS_CONC" ip addr add "$CONC_ADDR6/64" dev conc-fw nodad
  nsx "$NS_CONC" ip addr add "$CONC_OP_ADDR6/64" dev conc-op nodad
  nsx "$NS_OPNET" ip addr add "$OPNET_ADDR6/64" dev op-conc nodad
  nsx "$NS_FW" ip addr add "$FW_PX_ADDR6/64" dev fw-px nodad
  nsx "$NS_PROXY" ip addr add "$PROXY_ADDR6/64" dev px-fw nodad
  nsx "$NS_UE" ip link set ue-fw up
  nsx "$NS_FW" ip link set fw-ue up
  nsx "$NS_FW" ip link set fw-conc up
  nsx "$NS_CONC" ip link set conc-fw up
  nsx "$NS_CONC" ip link set conc-op up
  nsx "$NS_OPNET" ip link set op-conc up
  nsx "$NS_FW" ip link set fw-px up
  nsx "$NS_PROXY" ip link set px-fw up
  for ns in "$NS_FW" "$NS_CONC"; do
    nsx "$ns" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 >/dev/null
  done
  ok

  step "routes (IPv4 and IPv6)"
  nsx "$NS_UE" ip route add default via "$FW_UE_ADDR"
  nsx "$NS_FW" ip route add "$OPNET_NET" via "$CONC_ADDR"
  nsx "$NS_CONC" ip route add default via "$FW_CONC_ADDR"
  nsx "$NS_OPNET" ip route add default via "$CONC_OP_ADDR"
  nsx "$NS_PROXY" ip route add default via "$FW_PX_ADDR"
  nsx "$NS_UE" ip -6 route add default via "$FW_UE_ADDR6"
  nsx "$NS_FW" ip -6 route add "$OPNET_NET6" via "$CONC_ADDR6"
  nsx "$NS_CONC" ip -6 route add default via "$FW_CONC_ADDR6"
  nsx "$NS_OPNET" ip -6 route add default via "$CONC_OP_ADDR6"
  nsx "$NS_PROXY" ip -6 route add default via "$FW_PX_ADDR6"
  ok

  step "firewall (nft table inet labfw in $NS_FW, restrictive)"
  fw_apply restrictive
  ok

  step "opnet services (udp/7, tcp/5001 5002 80 5003; v4 + v6)"
  start_services
  ok

  step "proxy (tinyproxy, TCP $PROXY_PORT, v4 + v6)"
  if start_proxy; then ok; else printf 'SKIPPED (tinyproxy not installed; proxy-only unavailable)\n'; fi
  set +e
  LAB_UP_DONE=1
  echo up >"$LAB_STATE_DIR/state"
  lab_check
}

lab_down() {
  lab_require_root
  local f ns
  # Services: SIGTERM to all of them at once, then one bounded wait (not one wait each).
  local pids=() pid i
  if [[ -d $LAB_STATE_DIR ]]; then
    for f in "$LAB_STATE_DIR"/*.pid; do
      [[ -e $f ]] || continue
      pid=$(cat "$f")
      if ! [[ $pid =~ ^[0-9]+$ ]] || ! kill -0 "$pid" 2>/dev/null; then continue; fi
      pids+=("$pid")
      kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
    done
  fi
  for ((i = 0; i < 20 && ${#pids[@]} > 0; i++)); do
    local alive=()
    for pid in "${pids[@]}"; do
      [[ -d /proc/$pid ]] && ! grep -q '^[0-9]* ([^)]*) Z' "/proc/$pid/stat" 2>/dev/null &&
        alive+=("$pid")
    done
    pids=("${alive[@]}")
    ((${#pids[@]} == 0)) || sleep 0.1
  done
  for pid in "${pids[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null; done
  for ns in "${LAB_NAMESPACES[@]}"; do kill_ns_pids "$ns"; done
  for ns in "${LAB_NAMESPACES[@]}"; do
    lab_ns_exists "$ns" && ip netns del "$ns" 2>/dev/null
  done
  # veth peers vanish with their namespaces; nothing was created in the root namespace.
  rm -rf "$LAB_STATE_DIR"
  rmdir "$LAB_STATE_ROOT" 2>/dev/null || true
  if lab_any_ns_exists; then
    echo "lab: error: could not remove all lab namespaces (ip netns list)" >&2
    return 1
  fi
  say "lab '${LAB_PREFIX:-default}' is down"
}

# ---------------------------------------------------------------- check
CHECK_FAILS=0
check_line() { # RESULT(ok|FAIL) TEXT
  printf '  [%-4s] %s\n' "$1" "$2"
  [[ $1 == ok ]] || CHECK_FAILS=$((CHECK_FAILS + 1))
}

probe() { printf '%-5s ue -> %-20s %s' "$1" "$2" "$3"; }

lab_check() {
  lab_require_root
  lab_all_ns_exist || lab_die "lab '${LAB_PREFIX:-default}' is not up"
  local mode
  mode=$(cat "$LAB_STATE_DIR/mode" 2>/dev/null || echo unknown)
  if [[ $mode == proxy-only ]]; then lab_check_proxy; return; fi
  [[ $mode == restrictive ]] || lab_die "firewall is '$mode'; run '$0 close' before '$0 check'"
  CHECK_FAILS=0
  say "== firewall check: direct access from ue must be blocked, only TCP to $CONC_ADDR:443 / [$CONC_ADDR6]:443 passes"
  # The two families use disjoint counters, listeners and probes: run them side by side.
  local out4 out6 p4 p6
  out4=$(mktemp) || lab_die "mktemp failed"
  out6=$(mktemp) || { rm -f "$out4"; lab_die "mktemp failed"; }
  check_family 4 "$OPNET_ADDR" "$CONC_ADDR" "" >"$out4" 2>&1 &
  p4=$!
  check_family 6 "$OPNET_ADDR6" "$CONC_ADDR6" 6 >"$out6" 2>&1 &
  p6=$!
  wait "$p4" "$p6"
  cat "$out4" "$out6"
  CHECK_FAILS=$(grep -c '^  \[FAIL\]' "$out4" "$out6" | awk -F: '{ n += $NF } END { print n + 0 }')
  rm -f "$out4" "$out6"
  if ((CHECK_FAILS == 0)); then say "== firewall check passed"; return 0; fi
  say "== firewall check FAILED ($CHECK_FAILS problem(s))"
  return 1
}

# probe_blocked COUNTER SCRIPT: runs the probe SCRIPT (bash; exit 0 = it got through) in its own
# process group; 0 = blocked, 1 = it got through. A probe that fails is blocked. Rather than wait
# out the probe's own timeout (1-3 s each; most of what `up` took), once the firewall's drop
# COUNTER has counted the probe and 0.3 s more passed without an answer, the probe is stopped and
# counts as blocked: the firewall provably dropped it, and drops every later packet of it too.
probe_blocked() {
  local counter=$1 script=$2 before pid i
  before=$(fw_counter_packets "$counter")
  setsid bash -c "$script" </dev/null >/dev/null 2>&1 &
  pid=$!
  for ((i = 0; i < 200; i++)); do # bounded: 10 s (every probe has a shorter timeout)
    if ! pid_alive "$pid"; then
      if wait "$pid"; then return 1; fi
      return 0
    fi
    if (($(fw_counter_packets "$counter") > before)); then
      sleep 0.3
      if ! pid_alive "$pid"; then
        if wait "$pid"; then return 1; fi
        return 0
      fi
      kill_pid_tree "$pid" 1
      return 0
    fi
    sleep 0.05
  done
  kill_pid_tree "$pid" 1
  return 0
}

# check_family 4|6 OPNET CONC COUNTER-SUFFIX: the probes of `check` for one address family.
check_family() {
  local fam=$1 opnet=$2 conc=$3 sfx=$4 before after port icmp=ICMP
  [[ $fam == 6 ]] && icmp=ICMP6
  before=$(fw_counter_packets "drop${sfx}_icmp")
  if ! probe_blocked "drop${sfx}_icmp" "timeout 5 ip netns exec '$NS_UE' ping -n -q -c 1 -W 1 '$opnet'"; then
    check_line FAIL "$(probe "$icmp" "$opnet" "answered (should be blocked)")"
  else
    after=$(fw_counter_packets "drop${sfx}_icmp")
    check_line ok "$(probe "$icmp" "$opnet" "blocked (fw drop${sfx}_icmp +$((after - before)))")"
  fi
  before=$(fw_counter_packets "drop${sfx}_udp")
  if ! probe_blocked "drop${sfx}_udp" "[[ \$(printf 'lab-check\n' | timeout 6 ip netns exec '$NS_UE' socat -t 3 -T 3 - '$(socat_addr UDP "$opnet" 7)') == lab-check ]]"; then
    check_line FAIL "$(probe UDP "$opnet:7" "echoed (should be blocked)")"
  else
    after=$(fw_counter_packets "drop${sfx}_udp")
    check_line ok "$(probe UDP "$opnet:7" "no echo (fw drop${sfx}_udp +$((after - before)))")"
  fi
  for port in 5001 80; do
    before=$(fw_counter_packets "drop${sfx}_tcp")
    if ! probe_blocked "drop${sfx}_tcp" "timeout 5 ip netns exec '$NS_UE' socat -u /dev/null '$(socat_addr TCP "$opnet" "$port"),connect-timeout=2'"; then
      check_line FAIL "$(probe TCP "$opnet:$port" "connected (should be blocked)")"
    else
      after=$(fw_counter_packets "drop${sfx}_tcp")
      check_line ok "$(probe TCP "$opnet:$port" "blocked (fw drop${sfx}_tcp +$((after - before)))")"
    fi
  done

  # TCP/443 to the concentrator address must cross fw. Use a throw-away listener unless
  # something (e.g. portholed) already listens on that address (or its family's wildcard).
  local lpid="" reply bind=$conc
  [[ $fam == 6 ]] && bind="[$conc]"
  before=$(fw_counter_packets "tls${sfx}_new")
  if ! listening_on "$NS_CONC" t "$conc" 443; then
    setsid ip netns exec "$NS_CONC" socat "TCP$fam-LISTEN:443,bind=$bind,reuseaddr" 'SYSTEM:echo tls-port-ok' \
      </dev/null >/dev/null 2>&1 &
    lpid=$!
    wait_listen_on "$NS_CONC" t "$conc" 443 5 || true
    reply=$(tcp_request "$NS_UE" "$conc" 443 "" 3)
    kill_pid_tree "$lpid" 1
    after=$(fw_counter_packets "tls${sfx}_new")
    if [[ $reply == tls-port-ok ]]; then check_line ok "$(probe TCP "$conc:443" "allowed (throw-away listener answered, fw tls${sfx}_new +$((after - before)))")"
    else check_line FAIL "$(probe TCP "$conc:443" "no answer from throw-away listener in $NS_CONC")"
    fi
  else
    if tcp_connect "$NS_UE" "$conc" 443 3; then
      after=$(fw_counter_packets "tls${sfx}_new")
      check_line ok "$(probe TCP "$conc:443" "allowed (existing listener, fw tls${sfx}_new +$((after - before)))")"
    else check_line FAIL "$(probe TCP "$conc:443" "connect failed")"
    fi
  fi

  # Control: routing beyond fw is complete, so the firewall is the only barrier.
  if ping_ok "$NS_CONC" "$opnet" 1 && udp_echo "$NS_CONC" "$opnet" 7 ctl >/dev/null &&
    [[ $(tcp_request "$NS_CONC" "$opnet" 5001 "x" 3) == "$(printf x | sha256sum)" ]]; then
    check_line ok "control: conc -> opnet IPv$fam ICMP/UDP/TCP work (routing complete; fw is the only barrier)"
  else
    check_line FAIL "control: conc -> opnet IPv$fam ICMP/UDP/TCP do not all work"
  fi
}

# check in proxy-only mode: the ue reaches the concentrator's 443 only through the proxy.
lab_check_proxy() {
  CHECK_FAILS=0
  say "== proxy-only check: the ue reaches only the proxy $PROXY_ADDR:$PROXY_PORT / [$PROXY_ADDR6]:$PROXY_PORT," \
    "only the proxy reaches $CONC_ADDR:443 / [$CONC_ADDR6]:443"
  local out4 out6 p4 p6
  out4=$(mktemp) || lab_die "mktemp failed"
  out6=$(mktemp) || { rm -f "$out4"; lab_die "mktemp failed"; }
  check_proxy_family 4 "$OPNET_ADDR" "$CONC_ADDR" "$PROXY_ADDR" "" >"$out4" 2>&1 &
  p4=$!
  check_proxy_family 6 "$OPNET_ADDR6" "$CONC_ADDR6" "$PROXY_ADDR6" 6 >"$out6" 2>&1 &
  p6=$!
  wait "$p4" "$p6"
  cat "$out4" "$out6"
  CHECK_FAILS=$(grep -c '^  \[FAIL\]' "$out4" "$out6" | awk -F: '{ n += $NF } END { print n + 0 }')
  rm -f "$out4" "$out6"
  if ((CHECK_FAILS == 0)); then say "== proxy-only check passed"; return 0; fi
  say "== proxy-only check FAILED ($CHECK_FAILS problem(s))"
  return 1
}

# check_proxy_family 4|6 OPNET CONC PROXY COUNTER-SUFFIX: the probes of the proxy-only check.
check_proxy_family() {
  local fam=$1 opnet=$2 conc=$3 proxy=$4 sfx=$5 before after lpid="" bind=$3 reply code
  local auth=$PROXY_USER:$PROXY_PASS pxbind=$4 opbind=$2
  if [[ $fam == 6 ]]; then bind="[$conc]" pxbind="[$proxy]" opbind="[$opnet]"; fi
  if ! pid_alive "$(cat "$LAB_STATE_DIR/svc-proxy.pid" 2>/dev/null)"; then
    check_line FAIL "the proxy (tinyproxy) is not running in $NS_PROXY"
    return 0
  fi
  # A listener on the concentrator's 443 (unless e.g. portholed is there), so that "blocked" is
  # not mistaken for "nobody listens" and the tunnel through the proxy has an end point.
  if ! listening_on "$NS_CONC" t "$conc" 443; then
    setsid ip netns exec "$NS_CONC" socat "TCP$fam-LISTEN:443,bind=$bind,reuseaddr,fork" 'SYSTEM:echo tls-port-ok' \
      </dev/null >/dev/null 2>&1 &
    lpid=$!
    wait_listen_on "$NS_CONC" t "$conc" 443 5 || true
  fi
  before=$(fw_counter_packets "drop${sfx}_tcp")
  if ! probe_blocked "drop${sfx}_tcp" "timeout 5 ip netns exec '$NS_UE' socat -u /dev/null '$(socat_addr TCP "$conc" 443),connect-timeout=2'"; then
    check_line FAIL "$(probe TCP "$bind:443" "connected directly (should be blocked)")"
  else
    after=$(fw_counter_packets "drop${sfx}_tcp")
    if ((after > before)); then check_line ok "$(probe TCP "$bind:443" "direct: blocked (fw drop${sfx}_tcp +$((after - before)))")"
    else check_line FAIL "$(probe TCP "$bind:443" "direct: failed but fw drop${sfx}_tcp did not count it")"; fi
  fi
  before=$(fw_counter_packets "drop${sfx}_udp")
  if ! probe_blocked "drop${sfx}_udp" "[[ \$(printf 'lab-check\n' | timeout 6 ip netns exec '$NS_UE' socat -t 3 -T 3 - '$(socat_addr UDP "$opnet" 7)') == lab-check ]]"; then
    check_line FAIL "$(probe UDP "$opbind:7" "echoed (should be blocked)")"
  else
    after=$(fw_counter_packets "drop${sfx}_udp")
    check_line ok "$(probe UDP "$opbind:7" "no echo (fw drop${sfx}_udp +$((after - before)))")"
  fi
  before=$(fw_counter_packets "px${sfx}_new")
  local b_conc
  b_conc=$(fw_counter_packets "px_conc${sfx}_new")
  reply=$(http_connect "$NS_UE" "$proxy" "$PROXY_PORT" "$bind:443" "$auth" 3)
  code=$(http_status "$reply")
  after=$(fw_counter_packets "px${sfx}_new")
  if [[ $code == 200 ]] && { [[ -z $lpid ]] || grep -q tls-port-ok <<<"$reply"; }; then
    check_line ok "$(probe HTTP "$pxbind:$PROXY_PORT" "CONNECT $bind:443 as $PROXY_USER: 200$([[ -n $lpid ]] && echo ", listener answered") (fw px${sfx}_new +$((after - before)), px_conc${sfx}_new +$(($(fw_counter_packets "px_conc${sfx}_new") - b_conc)))")"
  else
    check_line FAIL "$(probe HTTP "$pxbind:$PROXY_PORT" "CONNECT $bind:443 as $PROXY_USER: got '${code:-no answer}'$([[ -n $lpid ]] && echo ", listener reply missing")")"
  fi
  reply=$(http_connect "$NS_UE" "$proxy" "$PROXY_PORT" "$bind:443" "" 3)
  code=$(http_status "$reply")
  if [[ $code == 407 ]]; then check_line ok "$(probe HTTP "$pxbind:$PROXY_PORT" "CONNECT without credentials: 407")"
  else check_line FAIL "$(probe HTTP "$pxbind:$PROXY_PORT" "CONNECT without credentials: got '${code:-no answer}' (want 407)")"; fi
  reply=$(http_connect "$NS_UE" "$proxy" "$PROXY_PORT" "$opbind:5001" "$auth" 3)
  code=$(http_status "$reply")
  if [[ $code == 403 ]]; then check_line ok "$(probe HTTP "$pxbind:$PROXY_PORT" "CONNECT $opbind:5001 (not 443): 403")"
  else check_line FAIL "$(probe HTTP "$pxbind:$PROXY_PORT" "CONNECT $opbind:5001 (not 443): got '${code:-no answer}' (want 403)")"; fi
  [[ -n $lpid ]] && kill_pid_tree "$lpid" 1
  # The proxy itself reaches nothing but the concentrator's 443.
  if tcp_connect "$NS_PROXY" "$opnet" 80 2; then check_line FAIL "proxy -> $opbind:80 connected (fw should only pass $bind:443)"
  else check_line ok "proxy -> $opbind:80 blocked (the proxy reaches only $bind:443)"; fi
}

# ---------------------------------------------------------------- status / open / close
lab_status() {
  lab_require_root
  local ns f name pid
  say "== porthole lab '${LAB_PREFIX:-default}'"
  for ns in "${LAB_NAMESPACES[@]}"; do
    if lab_ns_exists "$ns"; then printf '  netns %-14s present (%s process(es))\n' "$ns" "$(ip netns pids "$ns" 2>/dev/null | wc -l)"
    else printf '  netns %-14s absent\n' "$ns"; fi
  done
  if [[ -d $LAB_STATE_DIR ]]; then
    for f in "$LAB_STATE_DIR"/svc-*.pid; do
      [[ -e $f ]] || continue
      name=${f##*/svc-}; name=${name%.pid}; pid=$(cat "$f")
      if kill -0 "$pid" 2>/dev/null; then printf '  service %-12s pid %-8s running\n' "$name" "$pid"
      else printf '  service %-12s pid %-8s DEAD\n' "$name" "$pid"; fi
    done
    say "  firewall mode: $(cat "$LAB_STATE_DIR/mode" 2>/dev/null || echo unknown)"
    if lab_ns_exists "$NS_FW" && nsx "$NS_FW" nft list table inet labcut >/dev/null 2>&1; then
      say "  path: CUT (table inet labcut drops every forwarded packet; '$0 restore' undoes it)"
    fi
  else
    say "  (no state dir $LAB_STATE_DIR)"
  fi
  if lab_ns_exists "$NS_FW" && nsx "$NS_FW" nft list table inet labfw >/dev/null 2>&1; then
    say "  fw counters (packets/bytes):"
    local c v
    for c in "${LAB_FW_COUNTERS[@]}"; do
      v=$(fw_counter "$c")
      printf '    %-11s %10s pkts %14s bytes\n' "$c" "${v%% *}" "${v##* }"
    done
  fi
}

lab_open_close() {
  lab_require_root
  lab_all_ns_exist || lab_die "lab '${LAB_PREFIX:-default}' is not up"
  mkdir -p "$LAB_STATE_DIR"
  if [[ $1 == open ]]; then
    fw_apply open
    say "fw: OPEN (forward policy accept; raw-routing baseline). Restore with '$0 close'."
  elif [[ $1 == proxy-only ]]; then
    lab_ns_exists "$NS_PROXY" || lab_die "namespace $NS_PROXY is missing (lab set up by an older lab.sh?); run '$0 down' and '$0 up'"
    pid_alive "$(cat "$LAB_STATE_DIR/svc-proxy.pid" 2>/dev/null)" ||
      lab_die "the proxy is not running in $NS_PROXY (tinyproxy missing? run scripts/install-deps.sh, then '$0 down' and '$0 up')"
    fw_apply proxy-only
    say "fw: PROXY-ONLY (ue reaches only $PROXY_ADDR:$PROXY_PORT / [$PROXY_ADDR6]:$PROXY_PORT; only the proxy reaches $CONC_ADDR:443 / [$CONC_ADDR6]:443). Restore with '$0 close'."
    lab_check
  else
    fw_apply restrictive
    say "fw: restrictive (only TCP to $CONC_ADDR:443 from ue)."
  fi
}

# cut: fw drops every forwarded packet (a path that black-holes, e.g. a Wi-Fi that went away or a
# firewall that lost its state), in a table of its own so that `restore` leaves labfw untouched.
lab_cut_restore() {
  lab_require_root
  lab_all_ns_exist || lab_die "lab '${LAB_PREFIX:-default}' is not up"
  if [[ $1 == cut ]]; then
    nsx "$NS_FW" nft -f - <<'NFT' || lab_die "cannot install the cut table"
table inet labcut { }
delete table inet labcut
table inet labcut {
  chain forward {
    type filter hook forward priority -10; policy drop;
  }
}
NFT
    say "fw: path CUT (every forwarded packet dropped). Restore with '$0 restore'."
  else
    nsx "$NS_FW" nft delete table inet labcut 2>/dev/null || true
    say "fw: path restored."
  fi
}

main() {
  local cmd=${1:-}
  case $cmd in
    up) lab_up ;;
    down) lab_down ;;
    status) lab_status ;;
    open | close | proxy-only) lab_open_close "$cmd" ;;
    check) lab_check ;;
    cut | restore) lab_cut_restore "$cmd" ;;
    *) echo "usage: $0 up|down|status|open|close|proxy-only|check|cut|restore   (env LAB_PREFIX=...)" >&2; exit 2 ;;
  esac
}

main "$@"
