#!/usr/bin/env bash
# Interop over DTLS 1.2 with GnuTLS (Debian's gnutls-bin):
#   gnutls-cli --udp as a client of `siptls serve --listen dtls:...`:
#   OPTIONS -> 200, CRLFCRLF -> CRLF;
#   gnutls-serv --udp (echo mode) as the server `siptls ping dtls:...`
#   completes a verified handshake with (it echoes the request instead of
#   answering, so only the handshake and the delivery are checked).
# Args: SIPTLS_BIN PKI_DIR BUILD_DIR. A missing CLI or gnutls-bin is a
# failure (scripts/test.sh installs gnutls-bin). Every peer runs under
# `timeout`; each step waits for the answer it checks, never for a guessed
# time; only our own pids are stopped.
set -u
bin=$1 pki=$2
# shellcheck source=../support/shtest.sh
. "$(dirname "${BASH_SOURCE[0]}")/../support/shtest.sh"
[ -x "$bin" ] || { echo "FAIL no siptls CLI at $bin"; exit 1; }
need gnutls-cli gnutls-serv ss
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; rm -rf "$work"; }
trap cleanup EXIT
fails=0 passes=0
ok() { passes=$((passes + 1)); echo "ok   $1"; }
bad() { fails=$((fails + 1)); echo "FAIL $1"; }

timeout 300 "$bin" serve --listen dtls:127.0.0.1:0 --cert "$pki/server.pem" --key "$pki/server.key" \
    > "$work/serve.out" 2> "$work/serve.err" &
pids+=($!)
port=$(serve_port "$work/serve.out" dtls "${pids[0]}") || { echo "serve did not start"; cat "$work/serve.err"; exit 1; }

options() { # tag: an OPTIONS request into $req
    printf -v req 'OPTIONS sip:localhost SIP/2.0\r\nVia: SIP/2.0/DTLS 127.0.0.1;branch=z9hG4bK%s\r\nMax-Forwards: 70\r\nFrom: <sip:i@127.0.0.1>;tag=1\r\nTo: <sip:localhost>\r\nCall-ID: %s@interop\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n' "$1" "$1"
}

# Each client's stdin stays open until the answer is in (converse). The
# server listens on 127.0.0.1 only; gnutls-cli tries every address of
# localhost in turn.
options gnutls
converse "$work/g.out" "$req" "^SIP/2.0 200 OK" \
    timeout 20 gnutls-cli --udp --x509cafile "$pki/ca.pem" -p "$port" localhost
grep -q "^SIP/2.0 200 OK" "$work/g.out" && ok "gnutls-cli --udp: OPTIONS -> 200" ||
    bad "gnutls-cli --udp OPTIONS: $(cat "$work/g.out" "$work/g.out.err")"

# The CRLF pong is the last thing gnutls-cli prints (a line of its own).
converse "$work/g.out" $'\r\n\r\n' $'^\r$' \
    timeout 20 gnutls-cli --udp --x509cafile "$pki/ca.pem" -p "$port" localhost
out=$(tail -c 2 "$work/g.out" | od -An -c | tr -d ' \n')
[ "$out" = '\r\n' ] && ok "gnutls-cli --udp: CRLFCRLF -> CRLF" || bad "gnutls-cli ping got '$out'"

# gnutls-serv binds port 0 (one port for IPv4, another for IPv6) but prints
# "port 0": its IPv4 port is read with ss. The ping goes to localhost:
# every address the name resolves to is tried in turn (::1 first on
# Debian, where nothing listens on that port).
timeout 60 gnutls-serv --udp --echo -p 0 --x509certfile "$pki/server.pem" \
    --x509keyfile "$pki/server.key" > "$work/gnutls-serv.out" 2>&1 &
gpid=$!
pids+=($gpid)
if sport=$(udp4_port_of_child "$gpid" gnutls-serv); then
    out=$(timeout 30 "$bin" ping "dtls:localhost:$sport" --ca "$pki/ca.pem" --timeout 2 2>&1)
    if echo "$out" | grep -q "DTLSv1.2.*verified"; then
        ok "siptls ping dtls: -> gnutls-serv --udp: verified handshake"
    else
        bad "ping -> gnutls-serv: $out"
    fi
    # once the ping has sent, gnutls-serv logs the request it got
    echo "$out" | grep -q verified && wait_match "OPTIONS sip:localhost SIP/2.0" "$work/gnutls-serv.out" 10 "$gpid" && ok "gnutls-serv received the OPTIONS" \
        || bad "gnutls-serv output: $(head -c 300 "$work/gnutls-serv.out")"
else
    bad "gnutls-serv did not bind a port: $(cat "$work/gnutls-serv.out")"
fi
kill "$gpid" 2>/dev/null
wait "$gpid" 2>/dev/null

echo "$passes passed, $fails failed"
[ "$fails" = 0 ]
