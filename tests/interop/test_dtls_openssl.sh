#!/usr/bin/env bash
# Interop over DTLS 1.2 with OpenSSL (Debian's openssl binary):
#   openssl s_client -dtls1_2 as a client of `siptls serve --listen dtls:...`
#   (IPv4 and IPv6): OPTIONS -> 200, CRLFCRLF -> CRLF, and a small-MTU
#   client whose ClientHello arrives in two fragments (-mtu 256 with a long
#   cipher list), which siptls reassembles before the cookie exchange;
#   openssl s_server -dtls1_2 as the server `siptls ping dtls:...` reaches.
# Args: SIPTLS_BIN PKI_DIR BUILD_DIR. Exit 77 when the CLI or openssl is
# missing. Every peer runs under `timeout`; only our own pids are killed.
set -u
bin=$1 pki=$2
[ -x "$bin" ] || { echo "no siptls CLI at $bin"; exit 77; }
command -v openssl > /dev/null || { echo "openssl not installed"; exit 77; }
command -v python3 > /dev/null || { echo "python3 not installed"; exit 77; }
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; rm -rf "$work"; }
trap cleanup EXIT
fails=0 passes=0
ok() { passes=$((passes + 1)); echo "ok   $1"; }
bad() { fails=$((fails + 1)); echo "FAIL $1"; }

# serve on an ephemeral port; the port is read back from its banner into
# $served_port. Called in this shell (not in $(...)), so that its pid lands
# in pids and the EXIT trap stops it.
start_serve() { # listen-uri tag
    timeout 120 "$bin" serve --listen "$1" --cert "$pki/server.pem" --key "$pki/server.key" \
        > "$work/serve-$2.out" 2> "$work/serve-$2.err" &
    pids+=($!)
    served_port=
    for _ in $(seq 1 100); do
        served_port=$(sed -n 's/.*ready on dtls:.* port \([0-9]*\).*/\1/p' "$work/serve-$2.out" | head -n1)
        [ -n "$served_port" ] && break
        sleep 0.05
    done
}

options() {
    printf 'OPTIONS sip:localhost SIP/2.0\r\nVia: SIP/2.0/DTLS 127.0.0.1;branch=z9hG4bK%s\r\nMax-Forwards: 70\r\nFrom: <sip:i@127.0.0.1>;tag=1\r\nTo: <sip:localhost>\r\nCall-ID: %s@interop\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n' "$1" "$1"
}

start_serve dtls:127.0.0.1:0 v4
port=$served_port
[ -n "$port" ] || { echo "serve did not start"; cat "$work/serve-v4.err"; exit 1; }

out=$( (options v4; sleep 1) | timeout 10 openssl s_client -dtls1_2 -connect "127.0.0.1:$port" \
    -CAfile "$pki/ca.pem" -verify_return_error -quiet -no_ign_eof 2>&1)
echo "$out" | grep -q "SIP/2.0 200 OK" && ok "openssl s_client -dtls1_2: OPTIONS -> 200" \
    || bad "openssl s_client -dtls1_2 OPTIONS: $out"

out=$( (printf '\r\n\r\n'; sleep 1) | timeout 10 openssl s_client -dtls1_2 -connect "127.0.0.1:$port" \
    -CAfile "$pki/ca.pem" -quiet -no_ign_eof 2>/dev/null | od -An -c | tr -d ' \n')
[ "$out" = '\r\n' ] && ok "openssl s_client -dtls1_2: CRLFCRLF -> CRLF" || bad "openssl ping got '$out'"

# -mtu 256 and every cipher: the ClientHello (> 256 bytes) is sent in two
# handshake fragments; wolfSSL alone would drop it.
out=$( (options frag; sleep 1) | timeout 10 openssl s_client -dtls1_2 -mtu 256 \
    -cipher 'ALL:@SECLEVEL=0' -connect "127.0.0.1:$port" -CAfile "$pki/ca.pem" \
    -verify_return_error -quiet -no_ign_eof 2>&1)
echo "$out" | grep -q "SIP/2.0 200 OK" && ok "openssl s_client -dtls1_2 -mtu 256 (fragmented ClientHello): OPTIONS -> 200" \
    || bad "openssl -mtu 256: $out"

# IPv6, when the host has ::1
if python3 -c 'import socket; s=socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.bind(("::1",0))' 2> /dev/null; then
    start_serve 'dtls:[::1]:0' v6
    port6=$served_port
    if [ -n "$port6" ]; then
        out=$( (options v6; sleep 1) | timeout 10 openssl s_client -dtls1_2 -connect "[::1]:$port6" \
            -CAfile "$pki/ca.pem" -verify_return_error -quiet -no_ign_eof 2>&1)
        echo "$out" | grep -q "SIP/2.0 200 OK" && ok "openssl s_client -dtls1_2 over IPv6: OPTIONS -> 200" \
            || bad "openssl IPv6: $out"
    else
        bad "serve on [::1] did not start: $(cat "$work/serve-v6.err")"
    fi
fi

# openssl s_server as the server siptls ping reaches: it answers with a
# canned 200 OK written to its stdin once the client is connected.
sport=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
resp=$'SIP/2.0 200 OK\r\nVia: SIP/2.0/DTLS x;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: 1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n'
(sleep 1.5; printf '%s' "$resp"; sleep 3) | timeout 10 openssl s_server -dtls1_2 -accept "127.0.0.1:$sport" \
    -cert "$pki/server.pem" -key "$pki/server.key" -quiet -naccept 1 > "$work/s_server.out" 2>&1 &
spid=$!
pids+=($spid)
sleep 0.5
out=$(timeout 10 "$bin" ping "dtls:localhost:$sport" --ca "$pki/ca.pem" --timeout 5 2>&1); rc=$?
[ $rc = 0 ] && echo "$out" | grep -q "200 OK" && echo "$out" | grep -q "DTLSv1.2" \
    && ok "siptls ping dtls: -> openssl s_server -dtls1_2 (verified)" || bad "ping -> s_server -dtls1_2 (exit $rc): $out"
grep -q "^OPTIONS sip:localhost SIP/2.0" "$work/s_server.out" && ok "openssl s_server received the OPTIONS" \
    || bad "s_server output: $(head -c 300 "$work/s_server.out")"
kill "$spid" 2>/dev/null
wait "$spid" 2>/dev/null

echo "$passes passed, $fails failed"
[ "$fails" = 0 ]
