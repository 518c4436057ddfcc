#!/usr/bin/env bash
# End to end: `siptls ping` to a SIP domain (issue 11): --domain (the name
# the certificate must match while we connect to an address), --sni, and
# sips:/sip: URIs located by RFC 3263 through a real DNS server (dnsmasq on
# loopback with its own zone, at a free port; the client finds it through
# dns_servers in a configuration file). Args: SOURCE_DIR BUILD_DIR. Every
# step is bounded by `timeout` and waits for the state it checks; only the
# processes started here are stopped, by their pids.
set -u
src=$1 build=$2
bin=$build/siptls
pki=$build/pki
# shellcheck source=../support/shtest.sh
. "$src/tests/support/shtest.sh"
[ -x "$bin" ] || { echo "FAIL no siptls binary"; exit 1; }
need dnsmasq ss
work=$(mktemp -d)
serve_pid= dns_pid=
cleanup() {
    [ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null && wait "$serve_pid" 2>/dev/null
    [ -n "$dns_pid" ] && kill "$dns_pid" 2>/dev/null && wait "$dns_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
fails=0 passes=0
check() { # name expected-exit actual-exit
    if [ "$2" = "$3" ]; then passes=$((passes + 1)); echo "ok   $1";
    else fails=$((fails + 1)); echo "FAIL $1 (exit $3, want $2)"; fi
}
has() { # name pattern text
    if grep -q -- "$2" <<<"$3"; then passes=$((passes + 1)); echo "ok   $1";
    else fails=$((fails + 1)); echo "FAIL $1: $3"; fi
}

# A server whose certificate names alt.example.test only (not localhost,
# not 127.0.0.1), over TLS and DTLS.
"$bin" serve --listen tls:127.0.0.1:0 --listen dtls:127.0.0.1:0 --cert "$pki/alt.pem" \
    --key "$pki/alt.key" > "$work/serve.out" 2> "$work/serve.err" &
serve_pid=$!
port=$(serve_port "$work/serve.out" tls "$serve_pid") || { echo "FAIL serve: $(cat "$work/serve.err")"; exit 1; }
dport=$(serve_port "$work/serve.out" dtls "$serve_pid") || { echo "FAIL serve (dtls)"; exit 1; }

# --domain: connect to the address, verify the SIP domain
out=$(timeout 20 "$bin" ping "tls:127.0.0.1:$port" --domain alt.example.test --ca "$pki/ca.pem" 2>&1)
check "ping an address --domain alt.example.test" 0 $?
has "verified as the domain" "CN=alt.example.test.* verified" "$out"
out=$(timeout 20 "$bin" ping "tls:127.0.0.1:$port" --ca "$pki/ca.pem" 2>&1)
check "the same address without --domain: the certificate does not name it" 4 $?
has "name mismatch reported" "RFC 5922" "$out"
out=$(timeout 20 "$bin" ping "tls:127.0.0.1:$port" --domain other.example.test --ca "$pki/ca.pem" 2>&1)
check "--domain that the certificate does not name" 4 $?
out=$(timeout 20 "$bin" ping "dtls:127.0.0.1:$dport" --domain alt.example.test --sni front.example.test --ca "$pki/ca.pem" 2>&1)
check "DTLS with --domain and --sni" 0 $?
# sip:/sips: URIs without DNS: an address, /etc/hosts (localhost: ::1 refuses, then 127.0.0.1)
out=$(timeout 20 "$bin" ping "sips:localhost:$port" --domain alt.example.test --ca "$pki/ca.pem" 2>&1)
check "sips:localhost:PORT --domain" 0 $?
out=$(timeout 20 "$bin" ping "sip:alt.example.test:$port;maddr=127.0.0.1" --ca "$pki/ca.pem" 2>&1)
check "sip: URI with maddr: the URI's host is the domain" 0 $?
out=$(timeout 20 "$bin" ping "sip:127.0.0.1:$dport;transport=dtls" --domain alt.example.test --ca "$pki/ca.pem" 2>&1)
check "sip:...;transport=dtls" 0 $?
if "$bin" --version | grep -q DTLSv1.3; then
    has "over DTLS (1.3 where wolfSSL has it)" "DTLSv1.3" "$out"
else
    has "over DTLS" "DTLSv1.2" "$out"
fi
timeout 10 "$bin" ping "sip:alt.example.test;transport=udp" > /dev/null 2>&1
check "a transport siptls does not offer is a usage error" 2 $?
timeout 10 "$bin" ping "tls:127.0.0.1:$port" --domain "" > /dev/null 2>&1
check "an empty --domain is a usage error" 2 $?

# A DNS server with the domain's records: NAPTR -> SRV -> A. dnsmasq
# cannot bind port 0 and tell us: try free-looking ports until one binds
# (each try bounded; a port another process took makes it exit at once).
start_dns() {
    local try p
    for try in 1 2 3 4 5 6 7 8 9 10; do
        p=$((20000 + (RANDOM * 7 + try) % 40000))
        ss -Hlun "sport = :$p" | grep -q . && continue
        dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts --no-poll \
            --listen-address=127.0.0.1 --bind-interfaces --pid-file= --port="$p" \
            --local=/example.test/ --local=/siptls.test/ \
            --naptr-record=alt.example.test,10,10,S,SIPS+D2T,,_sips._tcp.alt.example.test \
            --srv-host="_sips._tcp.alt.example.test,sip.siptls.test,$port,10,1" \
            --srv-host="_sips._tcp.far.example.test,sip.siptls.test,$port,10,1" \
            --host-record=sip.siptls.test,127.0.0.1 > "$work/dns.log" 2>&1 &
        dns_pid=$!
        local end=$((SECONDS + 10))
        while alive "$dns_pid" && ((SECONDS < end)); do
            if ss -Hlun "sport = :$p" | grep -q .; then
                dns_port=$p
                return 0
            fi
            sleep 0.05
        done
        kill "$dns_pid" 2>/dev/null; wait "$dns_pid" 2>/dev/null; dns_pid=
    done
    return 1
}
start_dns || { echo "FAIL dnsmasq did not start: $(cat "$work/dns.log")"; exit 1; }
printf 'dns_servers = 127.0.0.1:%s\ndns_timeout = 500\n' "$dns_port" > "$work/dns.conf"

out=$(timeout 20 "$bin" ping sips:alt.example.test -c "$work/dns.conf" --ca "$pki/ca.pem" 2>&1)
check "ping sips:alt.example.test (NAPTR, SRV, A)" 0 $?
has "at the SRV target's address and port" "connected to 127.0.0.1:$port" "$out"
out=$(timeout 20 "$bin" ping sip:alt.example.test -c "$work/dns.conf" --ca "$pki/ca.pem" --count 2 --interval 0 2>&1)
check "ping sip:alt.example.test (over TLS too), twice" 0 $?
# far.example.test has only an SRV record pointing at this server: its
# certificate does not name far.example.test unless we say what to verify
out=$(timeout 20 "$bin" ping sips:far.example.test -c "$work/dns.conf" --ca "$pki/ca.pem" 2>&1)
check "sips:far.example.test: the SRV target's certificate is for another domain" 4 $?
has "name mismatch" "RFC 5922" "$out"
out=$(timeout 20 "$bin" ping sips:far.example.test -c "$work/dns.conf" --ca "$pki/ca.pem" --domain alt.example.test --sni alt.example.test 2>&1)
check "sips:far.example.test --domain alt.example.test" 0 $?
out=$(timeout 20 "$bin" ping sips:nowhere.example.test -c "$work/dns.conf" --ca "$pki/ca.pem" 2>&1)
check "a domain that does not exist" 4 $?
has "c-ares' message" "Domain name not found" "$out"
out=$(timeout 20 "$bin" ping sips:nowhere.example.test -c "$work/dns.conf" --ca "$pki/ca.pem" --domain x.example.test 2>&1)
check "a domain that does not exist, with --domain" 4 $?
has "the resolver's status" "cannot resolve host" "$out"

echo "test_cli_ping_dns: $passes passed, $fails failed"
[ "$fails" = 0 ]
