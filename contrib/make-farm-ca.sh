#!/usr/bin/env bash
# A small certificate authority for one farm, made with the openssl command, and a certificate
# for the master signed by it. Agents, the dashboard and the CLI trust the CA (--ca ca.pem or
# FARMHAND_CA); the master serves master.pem/master.key (--tls-cert, --tls-key).
#
#   contrib/make-farm-ca.sh [--dir DIR] [--name NAME] [--days N] HOST_OR_IP...
#
# Every HOST_OR_IP becomes a subjectAltName (DNS: for names, IP: for addresses): list each name
# and address the agents will put in --master tls://HOST:PORT. The CA (DIR/ca.pem, DIR/ca.key)
# is made on the first run and reused after, so running it again with another --name signs
# another certificate (a standby master) under the same CA. Keys are EC P-256, mode 0600.
set -euo pipefail

dir=farm-ca
name=master
days=825
usage() {
  echo "usage: $0 [--dir DIR] [--name NAME] [--days N] HOST_OR_IP..." >&2
  exit 2
}
while [[ $# -gt 0 ]]; do
  case "$1" in
    --dir) dir=${2:?--dir needs a directory}; shift 2 ;;
    --name) name=${2:?--name needs a name}; shift 2 ;;
    --days) days=${2:?--days needs a number}; shift 2 ;;
    -h | --help) usage ;;
    --*) echo "$0: unknown option $1" >&2; usage ;;
    *) break ;;
  esac
done
[[ $# -gt 0 ]] || { echo "$0: give at least one host name or IP address" >&2; usage; }
[[ $days =~ ^[0-9]+$ ]] || { echo "$0: --days must be a number" >&2; exit 2; }
[[ $name =~ ^[A-Za-z0-9._-]+$ ]] || { echo "$0: --name must be a plain file name" >&2; exit 2; }
command -v openssl >/dev/null || { echo "$0: the openssl command is not installed" >&2; exit 1; }

sans=()
for host in "$@"; do
  if [[ $host =~ ^[0-9.]+$ || $host == *:* ]]; then
    sans+=("IP:$host")
  elif [[ $host =~ ^[A-Za-z0-9*]([A-Za-z0-9.-]*[A-Za-z0-9])?$ ]]; then
    sans+=("DNS:$host")
  else
    echo "$0: $host is neither a host name nor an IP address" >&2
    exit 2
  fi
done
san=$(IFS=,; echo "${sans[*]}")

mkdir -p "$dir"
umask 077
if [[ ! -f $dir/ca.pem ]]; then
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/ca.key"
  openssl req -x509 -new -key "$dir/ca.key" -sha256 -days 3650 -subj "/CN=farmhand farm CA" \
    -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out "$dir/ca.pem"
  echo "made the CA: $dir/ca.pem (give it to every agent), $dir/ca.key (keep it offline)"
fi

openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/$name.key"
openssl req -new -key "$dir/$name.key" -subj "/CN=$1" -out "$dir/$name.csr"
extensions=$(mktemp)
trap 'rm -f "$extensions" "$dir/$name.csr"' EXIT
cat >"$extensions" <<EOF
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=$san
EOF
openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
  -sha256 -days "$days" -extfile "$extensions" -out "$dir/$name.pem" 2>/dev/null
chmod 0644 "$dir/ca.pem" "$dir/$name.pem"
echo "made $dir/$name.pem and $dir/$name.key for $san (valid $days days)"
echo "master: python master.py --host 0.0.0.0 --require-key --tls-port 6443 \\"
echo "          --tls-cert $dir/$name.pem --tls-key $dir/$name.key"
echo "agents: --master tls://$1:6443 --ca $dir/ca.pem"
