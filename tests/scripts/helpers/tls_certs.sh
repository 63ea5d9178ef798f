#!/usr/bin/env bash
# tls_certs.sh DIR: makes a test CA and certificates in DIR with the openssl CLI, at test
# time (no key is ever committed). Sourced or run by the TLS tests.
#   ca.pem ca.key          the CA clients and the daemon trust
#   server.pem server.key  the daemon: DNS SAN sockrpcd.test, IP SANs 127.0.0.1 ::1 and
#                          the proof test's veth addresses (169.254.77.1, 2001:db8:77::1)
#   server2.pem server2.key  another certificate for the daemon (a reload's new one)
#   client.pem client.key  principal spiffe://example.org/sandbox/42 (URI SAN), CN sandbox-42
#   denied.pem denied.key  principal spiffe://example.org/untrusted/7, CN untrusted-7
#   expired.pem expired.key  a sandbox certificate whose validity has ended
#   rogue-ca.pem, rogue.pem rogue.key  a certificate from another CA, same principal
set -euo pipefail
dir=$1
mkdir -p "$dir"
cd "$dir"
q() { "$@" >/dev/null 2>&1; }

ca() { # name subject
	q openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
		-subj "/CN=$2" -keyout "$1.key" -out "$1.pem" \
		-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign"
}
# leaf name ca cn san extra-x509-args...
leaf() {
	local name=$1 ca=$2 cn=$3 san=$4
	shift 4
	q openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-subj "/CN=$cn" -keyout "$name.key" -out "$name.csr"
	printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\n' "$san" >"$name.ext"
	q openssl x509 -req -in "$name.csr" -CA "$ca.pem" -CAkey "$ca.key" -CAcreateserial \
		-extfile "$name.ext" -out "$name.pem" "$@"
	rm -f "$name.csr" "$name.ext"
}
ca ca "sockrpc test CA"
ca rogue-ca "another CA"
leaf server ca sockrpcd.test \
	"DNS:sockrpcd.test,IP:127.0.0.1,IP:::1,IP:169.254.77.1,IP:2001:db8:77::1" -days 2
leaf server2 ca sockrpcd.test "DNS:sockrpcd.test,IP:127.0.0.1,IP:::1" -days 2
leaf client ca sandbox-42 "URI:spiffe://example.org/sandbox/42" -days 2
leaf denied ca untrusted-7 "URI:spiffe://example.org/untrusted/7" -days 2
leaf rogue rogue-ca sandbox-42 "URI:spiffe://example.org/sandbox/42" -days 2
# Expired: valid for one day, ten days ago (openssl 3.0's x509 cannot backdate; ca can).
q openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=sandbox-42" \
	-keyout expired.key -out expired.csr
mkdir -p ca.db
: >ca.db/index.txt
cat >ca.db/ca.cnf <<CNF
[ca]
default_ca = test
[test]
database = ca.db/index.txt
new_certs_dir = ca.db
serial = ca.db/serial
default_md = sha256
policy = any
x509_extensions = ext
[any]
commonName = supplied
[ext]
subjectAltName = URI:spiffe://example.org/sandbox/42
basicConstraints = CA:FALSE
CNF
echo 01 >ca.db/serial
q openssl ca -batch -config ca.db/ca.cnf -cert ca.pem -keyfile ca.key -in expired.csr \
	-out expired.pem -notext -startdate "$(date -u -d '-10 days' +%Y%m%d%H%M%SZ)" \
	-enddate "$(date -u -d '-9 days' +%Y%m%d%H%M%SZ)"
rm -rf expired.csr ca.db
chmod 600 ./*.key
