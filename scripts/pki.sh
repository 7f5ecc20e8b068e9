#!/usr/bin/env bash
# Throw-away lab PKI for porthole (ECDSA P-256, openssl CLI). NOT for production.
#
# Usage: scripts/pki.sh DIR
#
# Creates in DIR (skipping anything already present; keys are mode 0600):
#   ca.pem/ca.key               "porthole lab CA"
#   server.pem/server.key       CN concentrator.lab, SAN DNS:concentrator.lab, IP:198.18.2.2,
#                               IP:fd00:18:2::2, serverAuth
#   ue1.pem/ue1.key             CN ue1, clientAuth  (signed by the lab CA)
#   ue2.pem/ue2.key             CN ue2, clientAuth  (signed by the lab CA)
#   rogue-ca.pem/rogue-ca.key   "rogue CA" (unrelated to the lab CA)
#   rogue-ue.pem/rogue-ue.key   CN rogue-ue, clientAuth, signed by the rogue CA (must be refused)
#   rogue-server.pem/.key       concentrator.lab / 198.18.2.2 / fd00:18:2::2 signed by the rogue CA
#                               (stands in for a TLS-intercepting middlebox)
set -euo pipefail

die() { echo "pki: error: $*" >&2; exit 1; }

[[ $# -eq 1 && -n $1 ]] || { echo "usage: $0 DIR" >&2; exit 2; }
command -v openssl >/dev/null 2>&1 || die "openssl not found (apt-get install openssl)"

DIR=$1
mkdir -p "$DIR"
cd "$DIR"
umask 077

DAYS_CA=3650
DAYS_LEAF=825

EXT=$(mktemp)
trap 'rm -f "$EXT" ./*.csr.tmp' EXIT
cat >"$EXT" <<'EOF'
[ req ]
distinguished_name = dn
prompt             = no
[ dn ]
[ v3_ca ]
basicConstraints       = critical, CA:TRUE, pathlen:0
keyUsage               = critical, keyCertSign, cRLSign
subjectKeyIdentifier   = hash
[ server ]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature
extendedKeyUsage       = serverAuth
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid
subjectAltName         = DNS:concentrator.lab, IP:198.18.2.2, IP:fd00:18:2::2
[ client ]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature
extendedKeyUsage       = clientAuth
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid
EOF

newkey() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; chmod 0600 "$1"; }
serial() { echo "0x$(openssl rand -hex 16)"; }

# make_ca NAME CN : creates NAME.pem/NAME.key unless both exist. Returns 0 if (re)created.
make_ca() {
  local name=$1 cn=$2
  if [[ -s $name.pem && -s $name.key ]]; then echo "  keep   $name.pem"; return 1; fi
  newkey "$name.key"
  openssl req -new -x509 -config "$EXT" -extensions v3_ca -key "$name.key" -subj "/CN=$cn" \
    -days "$DAYS_CA" -sha256 -set_serial "$(serial)" -out "$name.pem"
  chmod 0644 "$name.pem"
  echo "  create $name.pem ($cn)"
  return 0
}

# make_leaf NAME CN PROFILE(server|client) CA [FORCE]
make_leaf() {
  local name=$1 cn=$2 profile=$3 ca=$4 force=${5:-0}
  if [[ $force == 0 && -s $name.pem && -s $name.key ]]; then echo "  keep   $name.pem"; return 0; fi
  newkey "$name.key"
  openssl req -new -config "$EXT" -key "$name.key" -subj "/CN=$cn" -out "$name.csr.tmp"
  openssl x509 -req -in "$name.csr.tmp" -CA "$ca.pem" -CAkey "$ca.key" -set_serial "$(serial)" \
    -days "$DAYS_LEAF" -sha256 -extfile "$EXT" -extensions "$profile" -out "$name.pem" 2>/dev/null
  rm -f "$name.csr.tmp"
  chmod 0644 "$name.pem"
  echo "  create $name.pem (CN=$cn, $profile, issuer $ca)"
}

# has_v6_san NAME: 0 iff NAME.pem carries the concentrator's IPv6 address as a SAN (certificates
# made before the lab had IPv6 lack it and are re-issued).
has_v6_san() {
  openssl x509 -in "$1.pem" -noout -text 2>/dev/null | grep -qi 'IP Address:FD00:18:2:0:0:0:0:2'
}

echo "== lab PKI in $(pwd)"
force=0
make_ca ca "porthole lab CA" && force=1   # new CA -> re-issue everything it signs
sforce=$force
[[ -s server.pem ]] && ! has_v6_san server && { echo "  server.pem lacks IP:fd00:18:2::2"; sforce=1; }
make_leaf server concentrator.lab server ca "$sforce"
make_leaf ue1 ue1 client ca "$force"
make_leaf ue2 ue2 client ca "$force"
force=0
make_ca rogue-ca "rogue CA" && force=1
make_leaf rogue-ue rogue-ue client rogue-ca "$force"
sforce=$force
[[ -s rogue-server.pem ]] && ! has_v6_san rogue-server && { echo "  rogue-server.pem lacks IP:fd00:18:2::2"; sforce=1; }
make_leaf rogue-server concentrator.lab server rogue-ca "$sforce"

# Sanity: the chains are what the tests expect.
openssl verify -CAfile ca.pem -purpose sslserver server.pem >/dev/null || die "server.pem does not verify against ca.pem"
has_v6_san server || die "server.pem lacks SAN IP:fd00:18:2::2"
openssl verify -CAfile ca.pem -purpose sslclient ue1.pem ue2.pem >/dev/null || die "ue certs do not verify against ca.pem"
openssl verify -CAfile rogue-ca.pem rogue-ue.pem rogue-server.pem >/dev/null || die "rogue certs do not verify against rogue-ca.pem"
if openssl verify -CAfile ca.pem rogue-ue.pem >/dev/null 2>&1; then die "rogue-ue.pem unexpectedly verifies against ca.pem"; fi
chmod 0600 ./*.key
echo "== lab PKI ready"
