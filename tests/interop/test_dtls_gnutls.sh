#!/usr/bin/env bash
# Interop over DTLS 1.2 with GnuTLS (Debian's gnutls-bin):
#   gnutls-cli --udp as a client of `siptls serve --listen dtls:...`:
#   OPTIONS -> 200, CRLFCRLF -> CRLF;
#   gnutls-serv --udp (echo mode) as the server `siptls ping dtls:...`
#   completes a verified handshake with (it echoes the request instead of
#   answering, so only the handshake and the delivery are checked).
# Args: SIPTLS_BIN PKI_DIR BUILD_DIR. Exit 77 when the CLI or gnutls-bin
# is missing. Every peer runs under `timeout`; only our own pids are killed.
set -u
bin=$1 pki=$2
[ -x "$bin" ] || { echo "no siptls CLI at $bin"; exit 77; }
command -v gnutls-cli > /dev/null || { echo "gnutls-cli not installed"; exit 77; }
command -v python3 > /dev/null || { echo "python3 not installed"; exit 77; }
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; rm -rf "$work"; }
trap cleanup EXIT
fails=0 passes=0
ok() { passes=$((passes + 1)); echo "ok   $1"; }
bad() { fails=$((fails + 1)); echo "FAIL $1"; }

timeout 120 "$bin" serve --listen dtls:127.0.0.1:0 --cert "$pki/server.pem" --key "$pki/server.key" \
    > "$work/serve.out" 2> "$work/serve.err" &
pids+=($!)
port=
for _ in $(seq 1 100); do
    port=$(sed -n 's/.*ready on dtls:.* port \([0-9]*\).*/\1/p' "$work/serve.out" | head -n1)
    [ -n "$port" ] && break
    sleep 0.05
done
[ -n "$port" ] || { echo "serve did not start"; cat "$work/serve.err"; exit 1; }

options() {
    printf 'OPTIONS sip:localhost SIP/2.0\r\nVia: SIP/2.0/DTLS 127.0.0.1;branch=z9hG4bK%s\r\nMax-Forwards: 70\r\nFrom: <sip:i@127.0.0.1>;tag=1\r\nTo: <sip:localhost>\r\nCall-ID: %s@interop\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n' "$1" "$1"
}

out=$( (options gnutls; sleep 1) | timeout 10 gnutls-cli --udp --x509cafile "$pki/ca.pem" \
    -p "$port" localhost 2>&1)
echo "$out" | grep -q "SIP/2.0 200 OK" && ok "gnutls-cli --udp: OPTIONS -> 200" || bad "gnutls-cli --udp OPTIONS: $out"

# The CRLF pong is the last thing gnutls-cli prints.
out=$( (printf '\r\n\r\n'; sleep 1) | timeout 10 gnutls-cli --udp --x509cafile "$pki/ca.pem" \
    -p "$port" localhost 2> /dev/null | tail -c 2 | od -An -c | tr -d ' \n')
[ "$out" = '\r\n' ] && ok "gnutls-cli --udp: CRLFCRLF -> CRLF" || bad "gnutls-cli ping got '$out'"

if command -v gnutls-serv > /dev/null; then
    sport=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    timeout 20 gnutls-serv --udp --echo -p "$sport" --x509certfile "$pki/server.pem" \
        --x509keyfile "$pki/server.key" > "$work/gnutls-serv.out" 2>&1 &
    gpid=$!
    pids+=($gpid)
    sleep 1
    out=$(timeout 10 "$bin" ping "dtls:localhost:$sport" --ca "$pki/ca.pem" --timeout 2 2>&1)
    echo "$out" | grep -q "DTLSv1.2.*verified" && ok "siptls ping dtls: -> gnutls-serv --udp: verified handshake" \
        || bad "ping -> gnutls-serv: $out"
    grep -q "OPTIONS sip:localhost SIP/2.0" "$work/gnutls-serv.out" && ok "gnutls-serv received the OPTIONS" \
        || bad "gnutls-serv output: $(head -c 300 "$work/gnutls-serv.out")"
    kill "$gpid" 2>/dev/null
    wait "$gpid" 2>/dev/null
fi

echo "$passes passed, $fails failed"
[ "$fails" = 0 ]
