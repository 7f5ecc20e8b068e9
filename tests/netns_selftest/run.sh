#!/bin/sh
# Runs netlink_selftest in a fresh network namespace that disappears with it, so nothing it adds
# (TUN device, addresses, routes, nftables table) can touch the host's network.
# Usage: run.sh path/to/netlink_selftest      Exit: 0 pass, 1 fail, 77 skipped (not root etc.)
set -eu

bin=${1:?usage: run.sh path/to/netlink_selftest}
if [ "$(id -u)" -ne 0 ]; then
    echo "skip: netns self-test needs root" >&2
    exit 77
fi
if ! command -v unshare >/dev/null 2>&1 || ! command -v ip >/dev/null 2>&1; then
    echo "skip: needs unshare (util-linux) and ip (iproute2)" >&2
    exit 77
fi
if [ ! -c /dev/net/tun ]; then
    echo "skip: /dev/net/tun missing" >&2
    exit 77
fi
if ! unshare --net true 2>/dev/null; then
    echo "skip: cannot create a network namespace (unshare --net)" >&2
    exit 77
fi

# Everything below the exec runs inside the new namespace only.
exec unshare --net sh -eu -c '
    ip link set lo up
    # An underlay interface with a gateway subnet: dummy if the kernel has it, else a veth pair.
    if ! ip link add d0 type dummy 2>/dev/null; then
        ip link add d0 type veth peer name d0peer
        ip link set d0peer up
    fi
    ip addr add 198.18.50.1/24 dev d0
    ip link set d0 up
    exec "$0"
' "$bin"
