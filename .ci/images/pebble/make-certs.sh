#!/usr/bin/env bash
# Usage: make-certs.sh DIR
# A CA (DIR/pebble.minica.pem; its key is thrown away) and, signed by it, the certificate of
# Pebble's API for the names pebble, localhost and 127.0.0.1 (DIR/localhost/cert.pem, key.pem).
set -Eeuo pipefail
[ $# -eq 1 ] || { sed -n '2s/^# //p' "$0"; exit 2; }
dir=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$dir/localhost"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
  -subj "/CN=Pebble API test CA" -keyout "$work/ca.key" -out "$dir/pebble.minica.pem" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=pebble" \
  -keyout "$dir/localhost/key.pem" -out "$work/leaf.csr" 2>/dev/null
cat >"$work/leaf.ext" <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=DNS:pebble,DNS:localhost,IP:127.0.0.1
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
EXT
openssl x509 -req -in "$work/leaf.csr" -CA "$dir/pebble.minica.pem" -CAkey "$work/ca.key" \
  -CAcreateserial -days 3650 -extfile "$work/leaf.ext" -out "$dir/localhost/cert.pem" 2>/dev/null
