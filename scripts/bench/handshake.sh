#!/usr/bin/env bash
# TLS handshake cost of one concentrator core, in isolation: server CPU per full handshake (a
# UE's first contact, mutual TLS with a new certificate) and per resumed one (TLS 1.3 ticket),
# next to the public-key floor a full handshake cannot go below. Prints a markdown report and
# writes it to --out.
#
#   scripts/bench/handshake.sh [--runs 3] [--count 2000] [--out FILE.md] [--no-crl] [--no-build]
#
# The server checks UE certificates against a CRL listing 1,000 revoked certificates, as the
# packaged portholed.conf does (`crl`); --no-crl leaves revocation checking off.
#
# Runs porthole-tlsbench (src/tools/tls_bench.cpp) --runs times and reports medians: the server
# side is portholed's own TLS code and configuration, the clients run in a child process over
# an abstract AF_UNIX socket, so no network, namespace or root is needed and no other work
# shares the measured process (unlike scale.sh, where uesim, the data plane and the kernel's
# TCP share the two vCPUs with portholed).
set -uo pipefail

BENCH_NAME=handshake
# shellcheck source=scripts/bench/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

RUNS=3
COUNT=2000
OUT=""
BUILD=1
CRL=1
while (($#)); do
  case $1 in
    --runs) RUNS=${2:?--runs needs a number}; shift 2 ;;
    --count) COUNT=${2:?--count needs a number}; shift 2 ;;
    --out) OUT=${2:?--out needs a file}; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    --no-crl) CRL=0; shift ;;
    -h | --help) sed -n '2,17p' "$0"; exit 0 ;;
    *) b_die "unknown option '$1' (try --help)" ;;
  esac
done
if ! [[ $RUNS =~ ^[0-9]+$ ]] || ((RUNS < 1 || RUNS > 20)); then b_die "--runs must be 1..20"; fi
if ! [[ $COUNT =~ ^[0-9]+$ ]] || ((COUNT < 100 || COUNT > 100000)); then b_die "--count must be 100..100000"; fi
OUT=${OUT:-$BUILD_DIR/handshake-results.md}
b_require_tools cmake ninja openssl

TLSBENCH_BIN=$BUILD_DIR/src/tools/porthole-tlsbench
((BUILD)) && b_build porthole-tlsbench
[[ -x $TLSBENCH_BIN ]] || b_die "porthole-tlsbench not found at $TLSBENCH_BIN (build target porthole-tlsbench)"
"$PKI_SH" "$PKI" >/dev/null || b_die "cannot create the lab PKI in $PKI"

CRL_ARGS=()
CRL_NOTE="no CRL (revocation not checked)"
if ((CRL)); then
  b_make_crl "$PKI/bench-crl.pem" || b_die "cannot make the benchmark CRL"
  CRL_ARGS=(--crl "$PKI/bench-crl.pem")
  CRL_NOTE="UE certificates checked against a CRL of 1,000 revoked certificates, as the packaged configuration does"
fi

declare -A VALUES=()
FIELDS=(full_cpu_us full_per_cpu_s resumed_cpu_us resumed_per_cpu_s ecdsa_verify_us ecdsa_sign_us x25519_us floor_us floor_per_s)
for ((run = 1; run <= RUNS; run++)); do
  b_log "run $run of $RUNS: $COUNT full and $COUNT resumed handshakes"
  # Bounded: ~1 ms per handshake here; a hung run is killed.
  line=$(timeout $((COUNT / 100 + 60)) "$TLSBENCH_BIN" --ca-cert "$PKI/ca.pem" --ca-key "$PKI/ca.key" \
    --server-cert "$PKI/server.pem" --server-key "$PKI/server.key" --count "$COUNT" "${CRL_ARGS[@]}" | grep '^tlsbench:') ||
    b_die "porthole-tlsbench failed in run $run"
  b_log "$line"
  for f in "${FIELDS[@]}"; do
    v=$(sed -n "s/.* $f=\([0-9.]*\).*/\1/p" <<<"$line")
    VALUES[$f]="${VALUES[$f]:-} $v"
  done
done
med() { local v; read -ra v <<<"${VALUES[$1]}"; b_median "${v[@]}"; }
per_run() { echo "${VALUES[$1]}" | sed 's/^ //; s/ / \/ /g'; }

{
  echo "### handshake.sh (server CPU per TLS handshake, one core, in isolation)"
  echo
  echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'); kernel $(uname -r); CPU $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo); nproc $(nproc)"
  echo "- porthole $("$PORTHOLED_BIN" --version 2>/dev/null | head -n 1) ($BUILD_DIR); $(openssl version)"
  echo "- $RUNS runs of $COUNT full + $COUNT resumed handshakes (porthole-tlsbench: portholed's TlsContext/TlsConnection, TLS 1.3, client certificate required, ECDSA P-256 certificates, X25519; clients in a child process over AF_UNIX); $CRL_NOTE; medians"
  echo
  echo "| handshake | server CPU µs each | per CPU-second | per run |"
  echo "|---|---:|---:|---|"
  echo "| full (first contact: a new UE certificate decoded and verified) | $(b_fmt 1 "$(med full_cpu_us)") | $(b_fmt 0 "$(med full_per_cpu_s)") | $(per_run full_per_cpu_s) |"
  echo "| resumed (TLS 1.3 ticket, PSK + ECDHE) | $(b_fmt 1 "$(med resumed_cpu_us)") | $(b_fmt 0 "$(med resumed_per_cpu_s)") | $(per_run resumed_per_cpu_s) |"
  echo "| public-key floor of a full handshake (2 × P-256 verify $(b_fmt 1 "$(med ecdsa_verify_us)") + sign $(b_fmt 1 "$(med ecdsa_sign_us)") + X25519 keygen and derive $(b_fmt 1 "$(med x25519_us)")) | $(b_fmt 1 "$(med floor_us)") | $(b_fmt 0 "$(med floor_per_s)") | |"
} | tee "$OUT"
b_log "report written to $OUT"
