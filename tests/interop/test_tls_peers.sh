#!/usr/bin/env bash
# Interop with real third-party TLS stacks from Debian:
#   openssl s_client and gnutls-cli (TLS 1.2 and 1.3) as clients of `siptls serve`,
#   openssl s_server as the server `siptls ping` talks to.
# Args: SIPTLS_BIN PKI_DIR BUILD_DIR. Exit 77 when a peer tool is missing.
set -u
bin=$1 pki=$2
command -v openssl > /dev/null || exit 77
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; rm -rf "$work"; }
trap cleanup EXIT
fails=0 passes=0
ok() { passes=$((passes + 1)); echo "ok   $1"; }
bad() { fails=$((fails + 1)); echo "FAIL $1"; }

"$bin" serve --listen tls:127.0.0.1:0 --cert "$pki/server.pem" --key "$pki/server.key" > "$work/serve.out" 2> "$work/serve.err" &
pids+=($!)
port=
for _ in $(seq 1 100); do
    port=$(sed -n 's/.*ready on tls:.* port \([0-9]*\).*/\1/p' "$work/serve.out" | head -n1)
    [ -n "$port" ] && break; sleep 0.05
done
[ -n "$port" ] || { echo "serve did not start"; cat "$work/serve.err"; exit 1; }

options() {
    printf 'OPTIONS sip:localhost SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1;branch=z9hG4bK%s\r\nMax-Forwards: 70\r\nFrom: <sip:i@127.0.0.1>;tag=1\r\nTo: <sip:localhost>\r\nCall-ID: %s@interop\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n' "$1" "$1"
}

for v in tls1_2 tls1_3; do
    out=$( (options "$v"; sleep 1) | timeout 10 openssl s_client -connect "127.0.0.1:$port" -"$v" \
        -CAfile "$pki/ca.pem" -verify_return_error -quiet -no_ign_eof 2>&1)
    echo "$out" | grep -q "SIP/2.0 200 OK" && ok "openssl s_client -$v: OPTIONS -> 200" || bad "openssl s_client -$v: $out"
    out=$( (printf '\r\n\r\n'; sleep 1) | timeout 10 openssl s_client -connect "127.0.0.1:$port" -"$v" \
        -CAfile "$pki/ca.pem" -quiet -no_ign_eof 2>/dev/null | od -An -c | tr -d ' \n')
    [ "$out" = '\r\n' ] && ok "openssl s_client -$v: CRLFCRLF -> CRLF" || bad "openssl -$v ping got '$out'"
done

if command -v gnutls-cli > /dev/null; then
    for prio in "NORMAL:-VERS-ALL:+VERS-TLS1.2" "NORMAL:-VERS-ALL:+VERS-TLS1.3"; do
        out=$( (options gnutls; sleep 1) | timeout 10 gnutls-cli --x509cafile "$pki/ca.pem" --priority "$prio" \
            -p "$port" localhost 2>&1)
        echo "$out" | grep -q "SIP/2.0 200 OK" && ok "gnutls-cli $prio: OPTIONS -> 200" || bad "gnutls-cli $prio: $out"
    done
fi

# openssl s_server as the server siptls ping reaches: it answers with a canned
# 200 OK written to its stdin once the client is connected.
sport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
resp=$'SIP/2.0 200 OK\r\nVia: SIP/2.0/TLS x;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: 1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n'
for v in tls1_2 tls1_3; do
    (sleep 1.5; printf '%s' "$resp"; sleep 3) | timeout 10 openssl s_server -accept "127.0.0.1:$sport" -"$v" \
        -cert "$pki/server.pem" -key "$pki/server.key" -quiet -naccept 1 > "$work/s_server.out" 2>&1 &
    spid=$!
    sleep 0.5
    out=$(timeout 10 "$bin" ping "tls:localhost:$sport" --ca "$pki/ca.pem" --timeout 5 2>&1); rc=$?
    [ $rc = 0 ] && echo "$out" | grep -q "200 OK" && ok "siptls ping -> openssl s_server -$v" || bad "ping -> s_server -$v (exit $rc): $out"
    kill "$spid" 2>/dev/null; wait "$spid" 2>/dev/null
done

echo "$passes passed, $fails failed"
[ "$fails" = 0 ]
