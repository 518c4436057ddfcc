#!/usr/bin/env bash
# Interop with real third-party TLS stacks from Debian:
#   openssl s_client and gnutls-cli (TLS 1.2 and 1.3) as clients of `siptls serve`,
#   openssl s_server as the server `siptls ping` talks to.
# Args: SIPTLS_BIN PKI_DIR BUILD_DIR. A missing peer tool is a failure
# (scripts/test.sh installs openssl and gnutls-bin). Every peer runs under
# `timeout`; each step waits for the answer it checks, never for a guessed
# time; only our own pids are stopped.
set -u
bin=$1 pki=$2
# shellcheck source=../support/shtest.sh
. "$(dirname "${BASH_SOURCE[0]}")/../support/shtest.sh"
[ -x "$bin" ] || { echo "FAIL no siptls CLI at $bin"; exit 1; }
need openssl gnutls-cli
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; rm -rf "$work"; }
trap cleanup EXIT
fails=0 passes=0
ok() { passes=$((passes + 1)); echo "ok   $1"; }
bad() { fails=$((fails + 1)); echo "FAIL $1"; }

timeout 300 "$bin" serve --listen tls:127.0.0.1:0 --cert "$pki/server.pem" --key "$pki/server.key" \
    > "$work/serve.out" 2> "$work/serve.err" &
pids+=($!)
port=$(serve_port "$work/serve.out" tls "${pids[0]}") || { echo "serve did not start"; cat "$work/serve.err"; exit 1; }

options() { # tag: an OPTIONS request into $req
    printf -v req 'OPTIONS sip:localhost SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1;branch=z9hG4bK%s\r\nMax-Forwards: 70\r\nFrom: <sip:i@127.0.0.1>;tag=1\r\nTo: <sip:localhost>\r\nCall-ID: %s@interop\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n' "$1" "$1"
}

# Each client's stdin stays open until the answer is in (converse), then
# its end closes the connection.
for v in tls1_2 tls1_3; do
    options "$v"
    converse "$work/c.out" "$req" "^SIP/2.0 200 OK" \
        timeout 20 openssl s_client -connect "127.0.0.1:$port" -"$v" \
        -CAfile "$pki/ca.pem" -verify_return_error -quiet -no_ign_eof
    grep -q "^SIP/2.0 200 OK" "$work/c.out" && ok "openssl s_client -$v: OPTIONS -> 200" ||
        bad "openssl s_client -$v: $(cat "$work/c.out" "$work/c.out.err")"
    converse "$work/c.out" $'\r\n\r\n' $'^\r$' \
        timeout 20 openssl s_client -connect "127.0.0.1:$port" -"$v" \
        -CAfile "$pki/ca.pem" -quiet -no_ign_eof
    out=$(od -An -c "$work/c.out" | tr -d ' \n')
    [ "$out" = '\r\n' ] && ok "openssl s_client -$v: CRLFCRLF -> CRLF" || bad "openssl -$v ping got '$out'"
done

for prio in "NORMAL:-VERS-ALL:+VERS-TLS1.2" "NORMAL:-VERS-ALL:+VERS-TLS1.3"; do
    options gnutls
    converse "$work/g.out" "$req" "^SIP/2.0 200 OK" \
        timeout 20 gnutls-cli --x509cafile "$pki/ca.pem" --priority "$prio" -p "$port" localhost
    grep -q "^SIP/2.0 200 OK" "$work/g.out" && ok "gnutls-cli $prio: OPTIONS -> 200" ||
        bad "gnutls-cli $prio: $(cat "$work/g.out" "$work/g.out.err")"
done

# openssl s_server as the server siptls ping reaches. It binds port 0 and
# prints "ACCEPT 127.0.0.1:PORT" (hence no -quiet); its stdin is a FIFO, and
# the canned 200 OK is written to it once the OPTIONS has arrived. The ping
# goes to localhost: every address the name resolves to is tried in turn
# (::1 first on Debian, where nothing listens here).
resp=$'SIP/2.0 200 OK\r\nVia: SIP/2.0/TLS x;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: 1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n'
for v in tls1_2 tls1_3; do
    rm -f "$work/ss.in"
    mkfifo "$work/ss.in"
    timeout 30 openssl s_server -accept 127.0.0.1:0 -"$v" -cert "$pki/server.pem" \
        -key "$pki/server.key" -naccept 1 < "$work/ss.in" > "$work/s_server.out" 2>&1 &
    spid=$!
    pids+=($spid)
    exec {sfd}> "$work/ss.in"
    if ! sport=$(accept_port "$work/s_server.out" "$spid"); then
        bad "openssl s_server -$v did not start: $(cat "$work/s_server.out")"
        exec {sfd}>&-
        continue
    fi
    timeout 30 "$bin" ping "tls:localhost:$sport" --ca "$pki/ca.pem" --timeout 20 > "$work/ping.out" 2>&1 &
    ppid=$!
    if wait_match "^OPTIONS sip:" "$work/s_server.out" 20 "$ppid"; then
        (printf '%s' "$resp" >&"$sfd") 2> /dev/null
    fi
    wait "$ppid"
    rc=$?
    exec {sfd}>&-
    out=$(cat "$work/ping.out")
    [ $rc = 0 ] && echo "$out" | grep -q "200 OK" && ok "siptls ping -> openssl s_server -$v" ||
        bad "ping -> s_server -$v (exit $rc): $out"
    kill "$spid" 2>/dev/null
    wait "$spid" 2>/dev/null
done

echo "$passes passed, $fails failed"
[ "$fails" = 0 ]
