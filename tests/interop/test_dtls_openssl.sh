#!/usr/bin/env bash
# Interop over DTLS 1.2 with OpenSSL (Debian's openssl binary):
#   openssl s_client -dtls1_2 as a client of `siptls serve --listen dtls:...`
#   (IPv4 and IPv6): OPTIONS -> 200, CRLFCRLF -> CRLF, and a small-MTU
#   client whose ClientHello arrives in two fragments (-mtu 256 with a long
#   cipher list), which siptls reassembles before the cookie exchange;
#   openssl s_server -dtls1_2 as the server `siptls ping dtls:...` reaches.
# Args: SIPTLS_BIN PKI_DIR BUILD_DIR. A missing CLI or openssl is a failure
# (scripts/test.sh installs openssl). Every peer runs under `timeout`; each
# step waits for the answer it checks, never for a guessed time; only our
# own pids are stopped.
set -u
bin=$1 pki=$2
# shellcheck source=../support/shtest.sh
. "$(dirname "${BASH_SOURCE[0]}")/../support/shtest.sh"
[ -x "$bin" ] || { echo "FAIL no siptls CLI at $bin"; exit 1; }
need openssl
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
    timeout 300 "$bin" serve --listen "$1" --cert "$pki/server.pem" --key "$pki/server.key" \
        > "$work/serve-$2.out" 2> "$work/serve-$2.err" &
    pids+=($!)
    served_port=$(serve_port "$work/serve-$2.out" dtls $!) || served_port=
}

options() { # tag: an OPTIONS request into $req
    printf -v req 'OPTIONS sip:localhost SIP/2.0\r\nVia: SIP/2.0/DTLS 127.0.0.1;branch=z9hG4bK%s\r\nMax-Forwards: 70\r\nFrom: <sip:i@127.0.0.1>;tag=1\r\nTo: <sip:localhost>\r\nCall-ID: %s@interop\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n' "$1" "$1"
}

start_serve dtls:127.0.0.1:0 v4
port=$served_port
[ -n "$port" ] || { echo "serve did not start"; cat "$work/serve-v4.err"; exit 1; }

# Each client's stdin stays open until the answer is in (converse).
options v4
converse "$work/c.out" "$req" "^SIP/2.0 200 OK" \
    timeout 20 openssl s_client -dtls1_2 -connect "127.0.0.1:$port" \
    -CAfile "$pki/ca.pem" -verify_return_error -quiet -no_ign_eof
grep -q "^SIP/2.0 200 OK" "$work/c.out" && ok "openssl s_client -dtls1_2: OPTIONS -> 200" \
    || bad "openssl s_client -dtls1_2 OPTIONS: $(cat "$work/c.out" "$work/c.out.err")"

converse "$work/c.out" $'\r\n\r\n' $'^\r$' \
    timeout 20 openssl s_client -dtls1_2 -connect "127.0.0.1:$port" \
    -CAfile "$pki/ca.pem" -quiet -no_ign_eof
out=$(od -An -c "$work/c.out" | tr -d ' \n')
[ "$out" = '\r\n' ] && ok "openssl s_client -dtls1_2: CRLFCRLF -> CRLF" || bad "openssl ping got '$out'"

# -mtu 256 and every cipher: the ClientHello (> 256 bytes) is sent in two
# handshake fragments; wolfSSL alone would drop it.
options frag
converse "$work/c.out" "$req" "^SIP/2.0 200 OK" \
    timeout 20 openssl s_client -dtls1_2 -mtu 256 \
    -cipher 'ALL:@SECLEVEL=0' -connect "127.0.0.1:$port" -CAfile "$pki/ca.pem" \
    -verify_return_error -quiet -no_ign_eof
grep -q "^SIP/2.0 200 OK" "$work/c.out" && ok "openssl s_client -dtls1_2 -mtu 256 (fragmented ClientHello): OPTIONS -> 200" \
    || bad "openssl -mtu 256: $(cat "$work/c.out" "$work/c.out.err")"

# IPv6, when the host has ::1 (/proc/net/if_inet6 lists it on lo)
if awk '$1 == "00000000000000000000000000000001" {f = 1} END {exit !f}' /proc/net/if_inet6 2> /dev/null; then
    start_serve 'dtls:[::1]:0' v6
    port6=$served_port
    if [ -n "$port6" ]; then
        options v6
        converse "$work/c.out" "$req" "^SIP/2.0 200 OK" \
            timeout 20 openssl s_client -dtls1_2 -connect "[::1]:$port6" \
            -CAfile "$pki/ca.pem" -verify_return_error -quiet -no_ign_eof
        grep -q "^SIP/2.0 200 OK" "$work/c.out" && ok "openssl s_client -dtls1_2 over IPv6: OPTIONS -> 200" \
            || bad "openssl IPv6: $(cat "$work/c.out" "$work/c.out.err")"
    else
        bad "serve on [::1] did not start: $(cat "$work/serve-v6.err")"
    fi
else
    echo "note: no ::1 on this host, IPv6 part not run"
fi

# openssl s_server as the server siptls ping reaches. It binds port 0 and
# prints "ACCEPT 127.0.0.1:PORT" (hence no -quiet); its stdin is a FIFO, and
# the canned 200 OK is written to it once the OPTIONS has arrived. The ping
# goes to localhost: every address the name resolves to is tried in turn
# (::1 first on Debian, where nothing listens here).
resp=$'SIP/2.0 200 OK\r\nVia: SIP/2.0/DTLS x;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: 1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n'
mkfifo "$work/ss.in"
timeout 30 openssl s_server -dtls1_2 -accept 127.0.0.1:0 -cert "$pki/server.pem" \
    -key "$pki/server.key" -naccept 1 < "$work/ss.in" > "$work/s_server.out" 2>&1 &
spid=$!
pids+=($spid)
exec {sfd}> "$work/ss.in"
if sport=$(accept_port "$work/s_server.out" "$spid"); then
    timeout 30 "$bin" ping "dtls:localhost:$sport" --ca "$pki/ca.pem" --timeout 20 > "$work/ping.out" 2>&1 &
    ppid=$!
    if wait_match "^OPTIONS sip:" "$work/s_server.out" 20 "$ppid"; then
        (printf '%s' "$resp" >&"$sfd") 2> /dev/null
    fi
    wait "$ppid"
    rc=$?
    out=$(cat "$work/ping.out")
    [ $rc = 0 ] && echo "$out" | grep -q "200 OK" && echo "$out" | grep -q "DTLSv1.2" \
        && ok "siptls ping dtls: -> openssl s_server -dtls1_2 (verified)" || bad "ping -> s_server -dtls1_2 (exit $rc): $out"
    grep -q "^OPTIONS sip:localhost SIP/2.0" "$work/s_server.out" && ok "openssl s_server received the OPTIONS" \
        || bad "s_server output: $(head -c 3000 "$work/s_server.out")"
else
    bad "openssl s_server -dtls1_2 did not start: $(cat "$work/s_server.out")"
fi
exec {sfd}>&-
kill "$spid" 2>/dev/null
wait "$spid" 2>/dev/null

echo "$passes passed, $fails failed"
[ "$fails" = 0 ]
