#!/usr/bin/env bash
# Installs, from Debian 12's archive, everything porthole needs to build, test and run its lab.
# Idempotent: does nothing when all packages are present. Needs root (apt-get).
set -euo pipefail

PACKAGES=(
  # build
  build-essential cmake ninja-build pkg-config clang clang-format libclang-rt-14-dev
  libssl-dev libtins-dev libcli11-dev libfmt-dev doctest-dev
  libnl-3-dev libnl-route-3-dev libnftables-dev
  nlohmann-json3-dev  # portholectl/control socket/metrics JSON (header-only)
  $(dpkg --print-architecture | grep -qx amd64 && echo libipsec-mb-dev)  # TLS record sealing (amd64 only; optional)
  # lab, tests and benchmarks
  iproute2 nftables openssl socat ncat iperf3 iputils-ping procps psmisc util-linux
  # proxy-only lab mode (HTTP CONNECT proxy), SIP call test, decoy web page test
  tinyproxy sip-tester curl
  # benchmarks (scripts/bench/; openvpn is installed by run.sh when it compares)
  jq
  # Debian packages (scripts/package.sh, tests/package/): tools, and the libraries
  # packaging/debian/control lists as build dependencies (with nlohmann-json3-dev above)
  dpkg-dev debhelper fakeroot lintian libsystemd-dev libcap-dev
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: error: missing packages (${missing[*]}) and not root: run with sudo" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
