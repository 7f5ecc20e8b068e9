# shellcheck shell=bash disable=SC2034
# Shared helpers for the porthole lab (sourced by scripts/lab.sh, scripts/demo.sh and
# tests/integration/lib.sh). Only defines variables and functions; has no side effects.
#
#  [ue] ue-fw 198.18.1.2/24 --- fw-ue 198.18.1.1/24 [fw] fw-conc 198.18.2.1/24 --- conc-fw 198.18.2.2/24 [conc] conc-op 198.18.3.1/24 --- op-conc 198.18.3.2/24 [opnet]
#          fd00:18:1::2/64        fd00:18:1::1/64      fd00:18:2::1/64          fd00:18:2::2/64        fd00:18:3::1/64          fd00:18:3::2/64
#                                                 [fw] fw-px 198.18.4.1/24 + fd00:18:4::1/64 --- px-fw 198.18.4.2/24 + fd00:18:4::2/64 [proxy]
#
# Set LAB_PREFIX before sourcing to get a private copy of the lab (namespaces
# ${LAB_PREFIX}ue, ${LAB_PREFIX}fw, ${LAB_PREFIX}conc, ${LAB_PREFIX}opnet, ${LAB_PREFIX}proxy).

LAB_PREFIX=${LAB_PREFIX:-}
case $LAB_PREFIX in
  *[!A-Za-z0-9_-]*) echo "lab: error: LAB_PREFIX may only contain [A-Za-z0-9_-] (got '$LAB_PREFIX')" >&2
                    exit 1 ;;
esac

NS_UE=${LAB_PREFIX}ue
NS_FW=${LAB_PREFIX}fw
NS_CONC=${LAB_PREFIX}conc
NS_OPNET=${LAB_PREFIX}opnet
NS_PROXY=${LAB_PREFIX}proxy
# The four namespaces every lab has (a lab set up before the proxy existed still counts as up).
LAB_CORE_NAMESPACES=("$NS_UE" "$NS_FW" "$NS_CONC" "$NS_OPNET")
LAB_NAMESPACES=("${LAB_CORE_NAMESPACES[@]}" "$NS_PROXY")

UE_ADDR=198.18.1.2        # ue-fw
FW_UE_ADDR=198.18.1.1     # fw-ue
FW_CONC_ADDR=198.18.2.1   # fw-conc
CONC_ADDR=198.18.2.2      # conc-fw (the concentrator listens here, TCP 443)
CONC_OP_ADDR=198.18.3.1   # conc-op
OPNET_ADDR=198.18.3.2     # op-conc (operator-network services)
OPNET_NET=198.18.3.0/24
FW_PX_ADDR=198.18.4.1     # fw-px
PROXY_ADDR=198.18.4.2     # px-fw (HTTP CONNECT proxy, tinyproxy, TCP 3128)
PROXY_PORT=3128
PROXY_USER=lab            # Basic authentication of the lab proxy
PROXY_PASS=labpass

# IPv6 (ULA, mirrors the IPv4 plan; added with nodad, router advertisements ignored)
UE_ADDR6=fd00:18:1::2
FW_UE_ADDR6=fd00:18:1::1
FW_CONC_ADDR6=fd00:18:2::1
CONC_ADDR6=fd00:18:2::2   # the concentrator's IPv6 listen address, TCP 443
CONC_OP_ADDR6=fd00:18:3::1
OPNET_ADDR6=fd00:18:3::2
OPNET_NET6=fd00:18:3::/64
FW_PX_ADDR6=fd00:18:4::1
PROXY_ADDR6=fd00:18:4::2

# The eight lab links as NAMESPACE:INTERFACE.
lab_links() {
  printf '%s\n' "$NS_UE:ue-fw" "$NS_FW:fw-ue" "$NS_FW:fw-conc" "$NS_CONC:conc-fw" "$NS_CONC:conc-op" "$NS_OPNET:op-conc" \
    "$NS_FW:fw-px" "$NS_PROXY:px-fw"
}

LAB_STATE_ROOT=/run/porthole-lab
LAB_STATE_DIR=$LAB_STATE_ROOT/${LAB_PREFIX:-default}

# Names of the nft counters in table inet labfw (fw namespace). The unsuffixed ones count IPv4,
# the *6 ones IPv6; est_other counts both families; drop_ipv6 is the IPv6 catch-all (drop_other
# the IPv4 one). px_* count the proxy-only mode: ue -> proxy:3128 (new/up/down) and
# proxy -> concentrator:443 (px_conc_new); the tunnel bytes proxy <-> concentrator are in tls_up/down.
LAB_FW_COUNTERS=(tls_new tls_up tls_down est_other drop_udp drop_icmp drop_tcp drop_other
                 tls6_new tls6_up tls6_down drop6_udp drop6_icmp drop6_tcp drop_ipv6
                 in_drop_ue in_nd6 fwd_open
                 px_new px_up px_down px_conc_new px6_new px6_up px6_down px_conc6_new)

lab_die() { echo "lab: error: $*" >&2; exit 1; }

lab_require_root() {
  [[ $(id -u) -eq 0 ]] || lab_die "must run as root (network namespaces, veth, nftables); try: sudo $0"
}

# lab_require_tools TOOL... : one clear line per missing tool, then exit 1.
lab_require_tools() {
  local t missing=()
  for t in "$@"; do command -v "$t" >/dev/null 2>&1 || missing+=("$t"); done
  ((${#missing[@]} == 0)) ||
    lab_die "missing tool(s): ${missing[*]} (Debian: apt-get install iproute2 nftables socat ncat iputils-ping openssl coreutils procps)"
}

LAB_TOOLS=(ip nft socat ncat ping openssl timeout sha256sum setsid ss awk)

nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

lab_ns_exists() { [[ -e /run/netns/$1 ]]; }

lab_any_ns_exists() {
  local ns
  for ns in "${LAB_NAMESPACES[@]}"; do lab_ns_exists "$ns" && return 0; done
  return 1
}

lab_all_ns_exist() {
  local ns
  for ns in "${LAB_CORE_NAMESPACES[@]}"; do lab_ns_exists "$ns" || return 1; done
  return 0
}

# kill_pid_tree PID [GRACE_SECONDS]: SIGTERM the process (its whole process group when
# it leads one, e.g. started via setsid), wait up to GRACE seconds, then SIGKILL.
# pid_alive PID: running, not a zombie (this sandbox's init may reap late, and kill -0 succeeds
# on a zombie).
pid_alive() {
  [[ $1 =~ ^[0-9]+$ && -d /proc/$1 ]] && ! grep -q '^[0-9]* ([^)]*) Z' "/proc/$1/stat" 2>/dev/null
}

kill_pid_tree() {
  local pid=$1 grace=${2:-3} pgid i
  [[ $pid =~ ^[0-9]+$ ]] || return 0
  pid_alive "$pid" || return 0
  pgid=$(ps -o pgid= -p "$pid" 2>/dev/null | tr -d ' ')
  if [[ $pgid == "$pid" ]]; then kill -TERM -- "-$pid" 2>/dev/null; else kill -TERM "$pid" 2>/dev/null; fi
  for ((i = 0; i < grace * 10; i++)); do
    pid_alive "$pid" || break
    sleep 0.1
  done
  if pid_alive "$pid"; then
    if [[ $pgid == "$pid" ]]; then kill -KILL -- "-$pid" 2>/dev/null; else kill -KILL "$pid" 2>/dev/null; fi
  fi
  # reap it if it is our child; harmless otherwise
  wait "$pid" 2>/dev/null || true
}

# kill_ns_pids NS: terminate every process still living in namespace NS (by PID, as
# listed by `ip netns pids`). Used by `lab.sh down` as a safety net.
kill_ns_pids() {
  local ns=$1 pids i
  lab_ns_exists "$ns" || return 0
  pids=$(ip netns pids "$ns" 2>/dev/null | tr '\n' ' ')
  [[ -n ${pids// /} ]] || return 0
  # shellcheck disable=SC2086
  kill -TERM $pids 2>/dev/null
  for ((i = 0; i < 30; i++)); do
    pids=$(ip netns pids "$ns" 2>/dev/null | tr '\n' ' ')
    [[ -n ${pids// /} ]] || return 0
    sleep 0.1
  done
  # shellcheck disable=SC2086
  kill -KILL $pids 2>/dev/null
  sleep 0.2
}

# fw_counter NAME -> "PACKETS BYTES" of the named nft counter in the fw namespace.
fw_counter() {
  nsx "$NS_FW" nft list counter inet labfw "$1" 2>/dev/null |
    awk '/packets/ { for (i = 1; i < NF; i++) { if ($i == "packets") p = $(i+1); if ($i == "bytes") b = $(i+1) } }
         END { printf "%d %d\n", p, b }'
}
fw_counter_packets() { local c; c=$(fw_counter "$1"); echo "${c%% *}"; }
fw_counter_bytes() { local c; c=$(fw_counter "$1"); echo "${c##* }"; }

# socat_addr PROTO(TCP|UDP) HOST PORT -> "TCP4:198.18.3.2:5001" or "TCP6:[fd00:18:3::2]:5001"
# (an address with a ':' is IPv6).
socat_addr() {
  case $2 in
    *:*) printf '%s6:[%s]:%s' "$1" "$2" "$3" ;;
    *) printf '%s4:%s:%s' "$1" "$2" "$3" ;;
  esac
}

# udp_echo NS HOST PORT PAYLOAD [SOCAT_ADDR_OPTS]: send one datagram, print the reply (if
# any). Returns 0 iff the reply equals the payload. Bounded to ~4 s. HOST may be IPv6.
udp_echo() {
  local ns=$1 host=$2 port=$3 payload=$4 opts=${5:-} reply
  reply=$(printf '%s\n' "$payload" |
    timeout 6 ip netns exec "$ns" socat -t 3 -T 3 - "$(socat_addr UDP "$host" "$port")$opts" 2>/dev/null)
  printf '%s' "$reply"
  [[ $reply == "$payload" ]]
}

# tcp_connect NS HOST PORT [TIMEOUT]: 0 iff a TCP connection can be established.
tcp_connect() {
  local ns=$1 host=$2 port=$3 t=${4:-3}
  timeout $((t + 3)) ip netns exec "$ns" socat -u /dev/null "$(socat_addr TCP "$host" "$port"),connect-timeout=$t" 2>/dev/null
}

# tcp_request NS HOST PORT [INPUT] [TIMEOUT]: connect, send INPUT, print everything received.
tcp_request() {
  local ns=$1 host=$2 port=$3 input=${4:-} t=${5:-5}
  printf '%s' "$input" |
    timeout $((t + 3)) ip netns exec "$ns" socat -t "$t" -T "$t" - "$(socat_addr TCP "$host" "$port"),connect-timeout=$t" 2>/dev/null
}

# http_connect NS PROXY-HOST PROXY-PORT TARGET [USER:PASS] [TIMEOUT]: from NS, ask the HTTP proxy
# for a CONNECT tunnel to TARGET (host:port, IPv6 as [addr]:port), with Basic credentials if given;
# print everything received (the proxy's status line and headers, then whatever TARGET sends).
# Our side is never half-closed (shut-none), so a reply arriving after the request is not lost.
http_connect() {
  local ns=$1 host=$2 port=$3 target=$4 auth=${5:-} t=${6:-5} req
  req="CONNECT $target HTTP/1.1"$'\r\n'"Host: $target"$'\r\n'
  [[ -n $auth ]] && req+="Proxy-Authorization: Basic $(printf '%s' "$auth" | base64 -w0)"$'\r\n'
  req+=$'\r\n'
  printf '%s' "$req" |
    timeout $((t + 3)) ip netns exec "$ns" socat -t "$t" -T "$t" - "$(socat_addr TCP "$host" "$port"),connect-timeout=$t,shut-none" 2>/dev/null
}
# http_status TEXT: the status code of the first line of an HTTP response ("" if none).
http_status() { awk 'NR == 1 && $1 ~ /^HTTP\// { print $2 } { exit }' <<<"$1"; }

# ping_ok NS HOST [COUNT]: quiet ping (IPv4 or IPv6), 0 iff at least one reply.
ping_ok() {
  local ns=$1 host=$2 count=${3:-1}
  timeout $((count * 2 + 3)) ip netns exec "$ns" ping -n -q -c "$count" -W 1 -i 0.2 "$host" >/dev/null 2>&1
}

# wait_listen NS PROTO(t|u) PORT [TIMEOUT]: wait until something listens on PORT in NS.
wait_listen() {
  local ns=$1 proto=$2 port=$3 t=${4:-5} i
  for ((i = 0; i < t * 10; i++)); do
    [[ -n $(ip netns exec "$ns" ss -Hln"$proto" "sport = :$port" 2>/dev/null) ]] && return 0
    sleep 0.1
  done
  return 1
}

# listening_on NS PROTO(t|u) ADDR PORT: 0 iff a socket in NS listens on ADDR:PORT or on the
# wildcard of ADDR's family (IPv6 [::] only counts for IPv6 ADDR; a dual-stack [::] socket
# is not assumed).
listening_on() {
  local ns=$1 proto=$2 addr=$3 port=$4 want any
  case $addr in
    *:*) want="[$addr]:$port"; any="[::]:$port" ;;
    *) want="$addr:$port"; any="0.0.0.0:$port" ;;
  esac
  ip netns exec "$ns" ss -Hln"$proto" "sport = :$port" 2>/dev/null |
    awk -v w="$want" -v a="$any" -v s="*:$port" '$4 == w || $4 == a || $4 == s { f = 1 } END { exit !f }'
}

# wait_listen_on NS PROTO ADDR PORT [TIMEOUT]: wait until listening_on succeeds.
wait_listen_on() {
  local i
  for ((i = 0; i < ${5:-5} * 10; i++)); do
    listening_on "$1" "$2" "$3" "$4" && return 0
    sleep 0.1
  done
  return 1
}

# now_s: seconds since epoch with nanoseconds, for throughput measurements.
now_s() { date +%s.%N; }

# mb_per_s BYTES SECONDS -> "123.4"
mb_per_s() { awk -v b="$1" -v s="$2" 'BEGIN { if (s <= 0) s = 1e-9; printf "%.1f", b / 1e6 / s }'; }
