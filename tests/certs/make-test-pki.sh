#!/usr/bin/env bash
# Make the test PKI (ECDSA P-256) into OUTDIR. Run by ctest as the "pki"
# fixture; nothing made here is committed. Idempotent: remakes everything.
#   ca.pem/ca.key            test CA (trusted by the tests)
#   rogue-ca.pem/.key        a CA nobody trusts
#   server.pem/.key          CN=localhost, SAN DNS:localhost, URI:sip:localhost,
#                            IP:127.0.0.1, IP:::1 (signed by ca)
#   alt.pem/.key             CN=alt.example.test, SAN DNS:alt.example.test,
#                            URI:sip:alt.example.test (SNI tests; signed by ca)
#   wrongname.pem/.key       SAN DNS:wrong.example.test only (signed by ca)
#   expired.pem/.key         localhost SANs, validity in the past (signed by ca)
#   client.pem/.key          CN=client.example.test, SAN URI:sip:client.example.test,
#                            DNS:client.example.test (signed by ca)
#   rogue-client.pem/.key    same names, signed by rogue-ca
#   server-chain.pem         server.pem + ca.pem
set -euo pipefail
out=${1:?usage: make-test-pki.sh OUTDIR}
mkdir -p "$out"
cd "$out"
rm -rf ./*.pem ./*.key ./*.srl ./*.csr ./*.cnf ./ca-db
days=3650

key() { openssl ecparam -name prime256v1 -genkey -noout -out "$1.key" 2>/dev/null; }

ca() { # name cn
    key "$1"
    openssl req -new -x509 -key "$1.key" -out "$1.pem" -days "$days" -subj "/O=siptls test/CN=$2" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
}

leaf() { # name cn san ca [extra openssl x509 args...]
    local name=$1 cn=$2 san=$3 signer=$4
    shift 4
    key "$name"
    openssl req -new -key "$name.key" -out "$name.csr" -subj "/O=siptls test/CN=$cn" 2>/dev/null
    printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyAgreement\nextendedKeyUsage=serverAuth,clientAuth\n' "$san" > "$name.cnf"
    openssl x509 -req -in "$name.csr" -CA "$signer.pem" -CAkey "$signer.key" -CAcreateserial \
        -out "$name.pem" -days "$days" -extfile "$name.cnf" "$@" 2>/dev/null
    rm -f "$name.csr" "$name.cnf"
}

ca ca "siptls test CA"
ca rogue-ca "siptls rogue CA"
leaf server localhost "DNS:localhost,URI:sip:localhost,IP:127.0.0.1,IP:::1" ca
leaf alt alt.example.test "DNS:alt.example.test,URI:sip:alt.example.test" ca
leaf wrongname wrong.example.test "DNS:wrong.example.test" ca
leaf client client.example.test "URI:sip:client.example.test,DNS:client.example.test" ca
leaf rogue-client client.example.test "URI:sip:client.example.test,DNS:client.example.test" rogue-ca

# Expired: issued by our CA with a validity that ended yesterday. `openssl ca`
# is the one front end that takes explicit dates on OpenSSL 3.0.
key expired
openssl req -new -key expired.key -out expired.csr -subj "/O=siptls test/CN=localhost" 2>/dev/null
mkdir -p ca-db && : > ca-db/index.txt && echo 1000 > ca-db/serial
cat > expired.cnf <<CNF
[ca]
default_ca = test
[test]
database = ca-db/index.txt
serial = ca-db/serial
new_certs_dir = ca-db
default_md = sha256
policy = any
copy_extensions = none
[any]
commonName = supplied
organizationName = optional
[ext]
subjectAltName = DNS:localhost,URI:sip:localhost,IP:127.0.0.1,IP:::1
basicConstraints = CA:FALSE
CNF
openssl ca -batch -config expired.cnf -cert ca.pem -keyfile ca.key -in expired.csr -out expired.pem \
    -startdate 20200101000000Z -enddate "$(date -u -d yesterday +%Y%m%d%H%M%SZ)" -extensions ext -notext 2>/dev/null
rm -rf expired.csr expired.cnf ca-db ./*.srl
cat server.pem ca.pem > server-chain.pem
ls "$out" > /dev/null
echo "test PKI ready in $out"
