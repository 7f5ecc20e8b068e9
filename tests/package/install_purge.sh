#!/usr/bin/env bash
# Installs the built Debian packages, starts the installed portholed the way portholed.service
# does (same command line, user porthole, only CAP_NET_ADMIN + CAP_NET_BIND_SERVICE, no new
# privileges) inside a network namespace this test creates, checks that it becomes ready, listens,
# serves TLS to a UE certificate, answers portholectl and survives a reload, stops it, then
# purges both packages and checks that nothing is left.
#
# Usage: sudo tests/package/install_purge.sh [DEBDIR]    (default: build-deb/, from scripts/package.sh)
#
# It changes the machine's packages (apt-get install/purge), so it is meant for CI's throw-away
# machine; it refuses to run when portholed or porthole is already installed. Nothing is done in
# the root network namespace. Cleanup (daemon, namespace, packages, files) runs on every exit.
# Exit codes: 0 pass, 1 fail, 77 skipped (not root).
set -uo pipefail

T_NAME=install_purge
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DEBDIR=$(cd "${1:-$REPO/build-deb}" 2>/dev/null && pwd) || { echo "[$T_NAME] FAIL: no directory ${1:-$REPO/build-deb}" >&2; exit 1; }
NS=pkgtest$$      # the concentrator's namespace
NS_UE=pkgue$$     # a laptop's, linked to it by a veth pair
CONC_IP=10.99.0.1
UE_IP=10.99.0.2
UNIT=/lib/systemd/system/portholed.service
CONF=/etc/porthole/portholed.conf
TIMEOUT=${T_TIMEOUT:-240}

log() { printf '[%s] %s\n' "$T_NAME" "$*"; }
FAILS=0
check() {  # DESCRIPTION CMD... : soft assertion
  local what=$1
  shift
  if "$@" >/dev/null 2>&1; then log "ok: $what"; else log "FAIL: $what" >&2; FAILS=$((FAILS + 1)); fi
}
die() { log "FAIL: $*" >&2; exit 1; }

[[ $(id -u) -eq 0 ]] || { log "SKIP: must run as root (installs packages)"; exit 77; }
for p in portholed porthole; do
  if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'installed'; then
    die "package $p is already installed on this machine; this test would purge it"
  fi
done
shopt -s nullglob
debs=("$DEBDIR"/portholed_*.deb "$DEBDIR"/porthole_*.deb)
shopt -u nullglob
((${#debs[@]} == 2)) || die "expected portholed_*.deb and porthole_*.deb in $DEBDIR (run scripts/package.sh)"

TMP=$(mktemp -d /tmp/porthole-pkgtest.XXXXXX)
chmod 0755 "$TMP"
DAEMON_PID=""
CLIENT_PID=""
NOTIFY_PID=""
NS_MADE=0
INSTALLED=0
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [[ -n $DAEMON_PID ]] && kill -TERM "$DAEMON_PID" 2>/dev/null && sleep 1 && kill -KILL "$DAEMON_PID" 2>/dev/null
  [[ -n $NOTIFY_PID ]] && kill -TERM "$NOTIFY_PID" 2>/dev/null
  [[ -n $WATCHDOG_PID ]] && kill -TERM "$WATCHDOG_PID" 2>/dev/null
  [[ -n $CLIENT_PID ]] && kill -TERM "$CLIENT_PID" 2>/dev/null && sleep 1 && kill -KILL "$CLIENT_PID" 2>/dev/null
  ((NS_MADE)) && ip netns del "$NS" 2>/dev/null && ip netns del "$NS_UE" 2>/dev/null
  if ((INSTALLED)); then
    DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq portholed porthole >/dev/null 2>&1 || true
  fi
  rm -rf "$TMP"
  exit "$rc"
}
WATCHDOG_PID=""
trap cleanup EXIT
trap 'exit 1' INT TERM
# A watchdog: the whole test may take TIMEOUT seconds; cleanup runs either way.
(
  trap 'kill "$sp" 2>/dev/null; exit 0' TERM
  sleep "$TIMEOUT" &
  sp=$!
  wait "$sp" && log "FAIL: timeout after ${TIMEOUT}s" >&2 && kill -TERM $$
) &
WATCHDOG_PID=$!

# --- install -------------------------------------------------------------------------------
log "installing ${debs[*]##*/}"
INSTALLED=1
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${debs[@]}" >"$TMP/apt-install.log" 2>&1 ||
  { cat "$TMP/apt-install.log" >&2; die "apt-get install failed"; }
for f in /usr/sbin/portholed /usr/bin/porthole "$CONF" "$UNIT" \
         /usr/share/man/man8/portholed.8.gz /usr/share/man/man8/porthole.8.gz \
         /usr/share/bash-completion/completions/porthole \
         /usr/share/bash-completion/completions/portholed \
         /usr/share/doc/porthole/examples/porthole.conf; do
  check "installed $f" test -e "$f"
done
HAVE_CTL=0
[[ -x /usr/sbin/portholectl ]] && HAVE_CTL=1
HAVE_CA=0
[[ -x /usr/sbin/porthole-ca ]] && HAVE_CA=1
log "portholectl installed: $HAVE_CTL, porthole-ca installed: $HAVE_CA"
((HAVE_CTL)) && check "portholectl.8 installed" test -e /usr/share/man/man8/portholectl.8.gz
((HAVE_CA)) && check "porthole-ca.8 installed" test -e /usr/share/man/man8/porthole-ca.8.gz
check "$CONF is a conffile" sh -c "dpkg-query -W -f='\${Conffiles}' portholed | grep -q ' $CONF '"
check "system user porthole exists" getent passwd porthole
check "user porthole has no login shell" sh -c "getent passwd porthole | grep -q ':/usr/sbin/nologin$'"
check "/var/lib/porthole is porthole 0750" test "$(stat -c %U:%a /var/lib/porthole)" = porthole:750
check "/etc/porthole is root:porthole 0750" test "$(stat -c %U:%G:%a /etc/porthole)" = root:porthole:750
check "portholed --version runs" /usr/sbin/portholed --version
if command -v systemd-analyze >/dev/null; then
  if systemd-analyze verify "$UNIT" >"$TMP/verify.txt" 2>&1; then
    log "ok: systemd-analyze verify $UNIT"
  else
    log "FAIL: systemd-analyze verify $UNIT:" >&2
    sed 's/^/    /' "$TMP/verify.txt" >&2
    FAILS=$((FAILS + 1))
  fi
fi

# --- certificates at the paths the shipped configuration names ---------------------------------
conf_path() { sed -n "s/^$1 *= *\"\\(.*\\)\"/\\1/p" "$CONF"; }
CERT=$(conf_path cert)
KEY=$(conf_path key)
CLIENT_CA=$(conf_path client-ca)
CRL=$(conf_path crl)
log "shipped config names cert=$CERT key=$KEY client-ca=$CLIENT_CA crl=${CRL:-none}"
UE_CERT=$TMP/ue.pem
UE_KEY=$TMP/ue.key
# Without porthole-ca: the lab PKI (scripts/pki.sh) copied to those paths, and an empty CRL.
certs_from_pki() {
  local d=$TMP/pki
  bash "$REPO/scripts/pki.sh" "$d" || return 1
  install -m 0644 "$d/ca.pem" "$CLIENT_CA"
  install -m 0644 "$d/server.pem" "$CERT"
  install -m 0640 -g porthole "$d/server.key" "$KEY"
  cp "$d/ue1.pem" "$UE_CERT" && cp "$d/ue1.key" "$UE_KEY"
  if [[ -n $CRL ]]; then
    printf '[ca]\ndefault_ca = d\n[d]\ndatabase = %s/index.txt\ncrlnumber = %s/crlnumber\ndefault_md = sha256\ndefault_crl_days = 30\n' \
      "$d" "$d" >"$d/ca.cnf"
    : >"$d/index.txt" && echo 01 >"$d/crlnumber"
    openssl ca -gencrl -config "$d/ca.cnf" -keyfile "$d/ca.key" -cert "$d/ca.pem" -out "$d/crl.pem" &&
      install -m 0644 "$d/crl.pem" "$CRL"
  fi
}
# With porthole-ca: its directory is the one the configuration names (dirname of client-ca),
# made readable by the service as the configuration's comments say.
certs_from_porthole_ca() {
  local dir
  dir=$(dirname "$CLIENT_CA")
  for f in "$CERT" "$KEY" ${CRL:+"$CRL"}; do
    [[ $(dirname "$f") == "$dir" ]] || { echo "$f is not in the CA directory $dir"; return 1; }
  done
  porthole-ca init "$dir" --name "porthole package test CA" &&
    porthole-ca server "$dir" "$(basename "$CERT" .pem)" --ip 127.0.0.1 --ip "$CONC_IP" --dns vpn.example.net &&
    porthole-ca ue "$dir" ue1 && porthole-ca ue "$dir" ue2 && porthole-ca revoke "$dir" ue2 &&
    chgrp porthole "$dir" "$KEY" && chmod 0750 "$dir" && chmod 0640 "$KEY" &&
    cp "$dir/ue1.pem" "$UE_CERT" && cp "$dir/ue1.key" "$UE_KEY" &&
    cp "$dir/ue2.pem" "$TMP/ue2.pem" && cp "$dir/ue2.key" "$TMP/ue2.key"
}
if ((HAVE_CA)); then
  certs_from_porthole_ca >"$TMP/ca.log" 2>&1 ||
    { cat "$TMP/ca.log" >&2; die "creating certificates with porthole-ca failed"; }
else
  certs_from_pki >"$TMP/ca.log" 2>&1 ||
    { cat "$TMP/ca.log" >&2; die "creating certificates with scripts/pki.sh failed"; }
fi
sed 's/^/    /' "$TMP/ca.log"
for f in "$CERT" "$KEY" "$CLIENT_CA" ${CRL:+"$CRL"}; do
  check "certificate file $f present" test -s "$f"
done
check "user porthole can read $KEY" setpriv --reuid porthole --regid porthole --init-groups -- cat "$KEY"

# --- start the installed daemon as the service would, in a namespace of our own -------------
ip netns add "$NS" || die "cannot create network namespace $NS"
NS_MADE=1
ip netns add "$NS_UE" || die "cannot create network namespace $NS_UE"
ip -n "$NS" link set lo up
ip -n "$NS_UE" link set lo up
ip link add "pkgc$$" netns "$NS" type veth peer name "pkgu$$" netns "$NS_UE" ||
  die "cannot create the veth pair"
ip -n "$NS" addr add "$CONC_IP/24" dev "pkgc$$" && ip -n "$NS" link set "pkgc$$" up
ip -n "$NS_UE" addr add "$UE_IP/24" dev "pkgu$$" && ip -n "$NS_UE" link set "pkgu$$" up
ip -n "$NS_UE" route add default via "$CONC_IP"
exec_start=$(sed -n 's/^ExecStart=//p' "$UNIT")
[[ $exec_start == /usr/sbin/portholed\ * ]] || die "unexpected ExecStart in $UNIT: $exec_start"
read -r -a cmd <<<"$exec_start"
caps=$(sed -n 's/^AmbientCapabilities=//p' "$UNIT" | tr 'A-Z ' 'a-z\n' | sed -n 's/^cap_/+/p' | paste -sd, -)
log "ExecStart: $exec_start"
log "capabilities: $caps"
# NOTIFY_SOCKET/WATCHDOG_USEC as systemd sets them for Type=notify + WatchdogSec=30s.
socat -u UNIX-RECV:"$TMP/notify",mode=0777 OPEN:"$TMP/notify.log",creat,append &
NOTIFY_PID=$!
for _ in $(seq 50); do [[ -S $TMP/notify ]] && break; sleep 0.1; done
# The daemon gets a mount namespace of its own with a fresh /run (tmpfs) holding /run/porthole
# (RuntimeDirectory=porthole, RuntimeDirectoryMode=0750), so the host's /run is left alone;
# in_daemon_ns CMD... runs a command in its namespaces (network and mount).
# /dev/net/tun is 0666 where udev runs (its default rules say so) and the service relies on that:
# User=porthole has CAP_NET_ADMIN, not the right to open a root-only file. A machine without udev
# (a container) may have it 0600; then the daemon's mount namespace gets a 0666 node of its own,
# as udev would have made it, and the host's /dev is left alone.
launch='mount -t tmpfs -o mode=0755 tmpfs /run &&
  install -d -o porthole -g porthole -m 0750 /run/porthole &&
  { [ "$(stat -c %a /dev/net/tun)" = 666 ] ||
    { mount -t tmpfs -o mode=0755 tmpfs /dev/net && mknod -m 0666 /dev/net/tun c 10 200; }; } &&
  umask 0077 && exec "$@"'
( exec ip netns exec "$NS" unshare --mount --propagation private -- \
    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin NOTIFY_SOCKET="$TMP/notify" WATCHDOG_USEC=30000000 \
    sh -c "$launch" sh \
    setpriv --reuid porthole --regid porthole --init-groups \
            --inh-caps "-all,$caps" --ambient-caps "-all,$caps" --bounding-set "-all,$caps" \
            --no-new-privs -- "${cmd[@]}" ) >"$TMP/portholed.log" 2>&1 &
DAEMON_PID=$!
in_daemon_ns() { nsenter --target "$DAEMON_PID" --mount --net -- "$@"; }
ready=0
for _ in $(seq 100); do
  grep -q 'READY=1' "$TMP/notify.log" 2>/dev/null && { ready=1; break; }
  kill -0 "$DAEMON_PID" 2>/dev/null || break
  sleep 0.1
done
if ! kill -0 "$DAEMON_PID" 2>/dev/null; then
  sed 's/^/    portholed: /' "$TMP/portholed.log" >&2
  die "installed portholed exited at start"
fi
check "portholed sent READY=1 (sd_notify)" test "$ready" = 1
check "portholed listens on TCP 443 in $NS" \
  sh -c "ip netns exec $NS ss -Htln 'sport = :443' | grep -q ."
check "portholed runs as user porthole" sh -c "[ \"\$(ps -o user= -p $DAEMON_PID)\" = porthole ]"
# cap_net_admin is bit 12, cap_net_bind_service bit 10: nothing outside 0x1400 may be held.
for set in CapEff CapPrm CapBnd CapAmb; do
  v=$(sed -n "s/^$set:\s*//p" "/proc/$DAEMON_PID/status")
  check "$set $v has no capability besides net_admin, net_bind_service" \
    test $((16#${v:-ffff} & ~16#1400)) -eq 0
done
check "TUN device portholed0 in $NS" ip -n "$NS" link show portholed0
check "TLS handshake with a UE certificate" sh -c \
  "echo | ip netns exec $NS openssl s_client -connect 127.0.0.1:443 -cert $UE_CERT -key $UE_KEY \
     -CAfile $CLIENT_CA -verify_return_error -brief 2>&1 | grep -q 'CONNECTION ESTABLISHED'"
if ((HAVE_CA)); then  # ue2 was revoked before the start: the CRL must refuse it
  echo | ip netns exec "$NS" openssl s_client -connect 127.0.0.1:443 -cert "$TMP/ue2.pem" \
    -key "$TMP/ue2.key" -CAfile "$CLIENT_CA" >"$TMP/ue2.txt" 2>&1
  sleep 0.2
  check "revoked UE certificate refused (CRL)" \
    grep -q 'client certificate is revoked.*CN=ue2' "$TMP/portholed.log"
fi
check "control socket /run/porthole/portholed.sock" in_daemon_ns test -S /run/porthole/portholed.sock
check "control socket is mode 0660, group porthole" \
  sh -c "[ \"\$(nsenter --target $DAEMON_PID --mount stat -c %a:%G /run/porthole/portholed.sock)\" = 660:porthole ]"
if ((HAVE_CTL)); then
  if in_daemon_ns /usr/sbin/portholectl --socket /run/porthole/portholed.sock status >"$TMP/status.txt" 2>&1; then
    log "ok: portholectl status"
    sed 's/^/    /' "$TMP/status.txt"
  else
    log "FAIL: portholectl status" >&2
    sed 's/^/    /' "$TMP/status.txt" >&2
    FAILS=$((FAILS + 1))
  fi
  check "portholectl status --json as user nobody, group porthole" \
    in_daemon_ns setpriv --reuid nobody --regid porthole --clear-groups -- \
    /usr/sbin/portholectl --socket /run/porthole/portholed.sock status --json
fi
# A laptop: the installed client connects from the other namespace (full tunnel, DNS left alone,
# its state files in the test's directory) and pings the concentrator's inner address.
if ((HAVE_CA)); then
  ip netns exec "$NS_UE" /usr/bin/porthole connect --server "$CONC_IP" --ca "$CLIENT_CA" \
    --cert "$UE_CERT" --key "$UE_KEY" --dns off --state-dir "$TMP" >"$TMP/porthole.log" 2>&1 &
  CLIENT_PID=$!
  up=0
  for _ in $(seq 100); do
    ip -n "$NS_UE" -4 addr show dev porthole0 2>/dev/null | grep -q 'inet ' && { up=1; break; }
    kill -0 "$CLIENT_PID" 2>/dev/null || break
    sleep 0.1
  done
  check "installed porthole client connected (porthole0 has an address)" test "$up" = 1
  check "ping through the tunnel to the concentrator's inner address" \
    ip netns exec "$NS_UE" ping -c 2 -i 0.2 -W 2 100.64.0.1
  check "porthole status answers" ip netns exec "$NS_UE" /usr/bin/porthole status --state-dir "$TMP"
  if ((HAVE_CTL)); then
    in_daemon_ns /usr/sbin/portholectl sessions >"$TMP/sessions.txt" 2>&1
    check "portholectl sessions lists ue1" grep -q ue1 "$TMP/sessions.txt"
    sed 's/^/    /' "$TMP/sessions.txt"
  fi
  kill -TERM "$CLIENT_PID"
  wait "$CLIENT_PID"
  check "client stopped by SIGTERM with exit status 0" test $? = 0
  CLIENT_PID=""
  sed 's/^/    porthole: /' "$TMP/porthole.log"
fi
# ExecReload=/bin/kill -HUP $MAINPID
kill -HUP "$DAEMON_PID"
sleep 1
check "portholed survives a reload (SIGHUP)" kill -0 "$DAEMON_PID"
check "still listening after the reload" sh -c "ip netns exec $NS ss -Htln 'sport = :443' | grep -q ."

kill -TERM "$DAEMON_PID"
rc=""
for _ in $(seq 50); do
  kill -0 "$DAEMON_PID" 2>/dev/null || { wait "$DAEMON_PID"; rc=$?; break; }
  sleep 0.1
done
check "portholed stopped by SIGTERM with exit status 0 (got ${rc:-still running})" test "${rc:-x}" = 0
DAEMON_PID=""
check "TUN device removed on exit" sh -c "! ip -n $NS link show portholed0"
log "portholed log:"
sed 's/^/    portholed: /' "$TMP/portholed.log"
log "sd_notify messages: $(tr '\n' ' ' <"$TMP/notify.log" | cut -c1-200)"
kill -TERM "$NOTIFY_PID" 2>/dev/null
NOTIFY_PID=""

# --- purge ---------------------------------------------------------------------------------
DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq portholed porthole >"$TMP/apt-purge.log" 2>&1 ||
  { cat "$TMP/apt-purge.log" >&2; die "apt-get purge failed"; }
INSTALLED=0
for f in /usr/sbin/portholed /usr/sbin/portholectl /usr/sbin/porthole-ca /usr/bin/porthole \
         /etc/porthole /var/lib/porthole "$UNIT" /usr/share/doc/portholed; do
  check "purge removed $f" test ! -e "$f"
done
check "purge removed user porthole" sh -c '! getent passwd porthole'
check "purge removed group porthole" sh -c '! getent group porthole'
check "dpkg knows neither package" sh -c \
  "! dpkg-query -W -f='\${Status}\n' portholed porthole 2>/dev/null | grep -q installed"

((FAILS == 0)) || die "$FAILS check(s) failed"
log "PASS"
