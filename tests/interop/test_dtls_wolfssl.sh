#!/usr/bin/env bash
# Interop over DTLS with wolfSSL's own example client and server, compiled
# from the same Debian source as the bundled libwolfssl.a siptls links
# (cmake/wolfssl/examples.cmake; bundled build only, docs/dtls.md "Interop").
#
# The examples cannot send or answer SIP: the client writes its fixed
# "hello wolfssl!" and waits for any reply, the server prints what it got
# ("Client message: ...") and answers "I hear you fa shizzle!". So each case
# checks a verified handshake at the version asked, and one application
# record decrypted in each direction: siptls hands the client's record to
# its SIP framing (which drops it, logged at debug level: "record dropped:
# framing: malformed message"); the server prints the OPTIONS `siptls ping`
# sent, and ping logs the server's answer dropped the same way.
#
#   wolfssl-client -u -v 3        -> siptls serve: DTLS 1.2
#   wolfssl-client -u -v 3 -A rogue CA: refused (the check is on)
#   wolfssl-client -u -v 4        -> siptls serve: DTLS 1.3
#   wolfssl-client -u -v 4 --cid  -> siptls serve: DTLS 1.3, a CID negotiated
#   wolfssl-client -u -v 3 --cid: wolfSSL 5.7.2 has CID on DTLS 1.3 only
#                                 (wolfSSL_dtls_cid_use fails on 1.2): the
#                                 client stops before sending anything
#   wolfssl-client -u -v d --cid  (1.2 or 1.3, offering a CID) -> siptls serve
#   siptls ping -> wolfssl-server -u -v 3 / -v 4 / -v 4 --cid
#
# The test runs on the bundled build only, which offers DTLS 1.3 with
# Connection IDs: the 1.3 cases must succeed (and the --cid ones must
# negotiate a CID). A build whose `siptls --version` does not list DTLSv1.3
# fails here; the cases below then check the refusals such a siptls gives,
# so the report still says what the peers saw.
#
# Args: SIPTLS_BIN PKI_DIR BUILD_DIR (the tests build folder, holding
# wolfssl-examples/). A missing program is a failure. Every peer runs under
# `timeout`; each step waits for the state it checks, never for a guessed
# time; only our own pids are stopped.
set -u
# the examples run from their own folder: every path they get is absolute
bin=$1 pki=$(cd "$2" && pwd) ex=$3/wolfssl-examples
# shellcheck source=../support/shtest.sh
. "$(dirname "${BASH_SOURCE[0]}")/../support/shtest.sh"
[ -x "$bin" ] || { echo "FAIL no siptls CLI at $bin"; exit 1; }
for p in wolfssl-client wolfssl-server; do
    [ -x "$ex/$p" ] || { echo "FAIL no $ex/$p (target wolfssl_examples, bundled build)"; exit 1; }
done
need ss stdbuf
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; rm -rf "$work"; }
trap cleanup EXIT
fails=0 passes=0
ok() { passes=$((passes + 1)); echo "ok   $1"; }
bad() { fails=$((fails + 1)); echo "FAIL $1"; }

# Does this siptls offer DTLS 1.3? ("transports: ..., dtls (DTLSv1.2 ...)")
dtls13=0
"$bin" --version | grep -q 'dtls ([^)]*DTLSv1\.3' && dtls13=1
if ((dtls13)); then ok "siptls --version offers DTLS 1.3 (bundled wolfSSL)"; else bad "siptls --version does not offer DTLS 1.3: the bundled build must"; fi

# The examples find "the wolfSSL home" by ./certs/dh2048.pem and exit
# without it: they run from $ex, where certs links to the source's. stdout
# is line-buffered (stdbuf) so that what they print is in the file when
# they are stopped. Started in this shell (not in $(...)): the pid lands in
# pids and the EXIT trap stops it.
example() { # out prog args...: start in the background, pid in $expid
    local out=$1 prog=$2
    shift 2
    (cd "$ex" && exec timeout 30 stdbuf -oL "./$prog" "$@") > "$out" 2>&1 &
    expid=$!
    pids+=("$expid")
}
stop() { kill "$1" 2>/dev/null; wait "$1" 2>/dev/null; }

# a fresh `siptls serve -v` per client case: its debug log is that case's alone
start_serve() { # tag: port in $port, log in $work/serve-TAG.err
    timeout 300 "$bin" serve -v --listen dtls:127.0.0.1:0 --cert "$pki/server.pem" \
        --key "$pki/server.key" > "$work/serve-$1.out" 2> "$work/serve-$1.err" &
    spid=$!
    pids+=("$spid")
    port=$(serve_port "$work/serve-$1.out" dtls "$spid") || port=
}

# client_ok TAG VERSION ARGS...: the example client completes a verified
# DTLS VERSION handshake with siptls serve, and its "hello wolfssl!" record
# reaches siptls's SIP framing. The client then waits for an answer that
# never comes (it is no SIP message) and is stopped.
client_ok() {
    local tag=$1 v=$2 log rc
    shift 2
    start_serve "$tag"
    [ -n "$port" ] || { bad "$tag: serve did not start: $(cat "$work/serve-$tag.err")"; return 1; }
    log=$work/serve-$tag.err
    example "$work/$tag.out" wolfssl-client -u -h 127.0.0.1 -p "$port" -A "$pki/ca.pem" -x -C "$@"
    if wait_match "record dropped: framing: malformed message" "$log" 20 "$expid" &&
        grep -q "^SSL version is $v\$" "$work/$tag.out" &&
        grep -q "dtls flow 1 from 127.0.0.1:[0-9]* up: $v " "$log"; then
        ok "wolfssl-client -u $*: verified $v handshake, its record reached siptls's SIP framing"
        rc=0
    else
        bad "wolfssl-client -u $* ($v): client: $(grep -v '^[A-Za-z0-9+/=]*$' "$work/$tag.out" | head -n 20) serve: $(cat "$log")"
        rc=1
    fi
    stop "$expid"
    stop "$spid"
    return $rc
}

# client_refused TAG PATTERN ARGS...: the example client's handshake with
# siptls serve fails (it exits non-zero without "SSL version is", with a
# "wolfSSL_connect error" line matching PATTERN: the handshake was tried,
# not the set-up that failed).
client_refused() {
    local tag=$1 pat=$2 rc
    shift 2
    start_serve "$tag"
    [ -n "$port" ] || { bad "$tag: serve did not start: $(cat "$work/serve-$tag.err")"; return 1; }
    example "$work/$tag.out" wolfssl-client -u -h 127.0.0.1 -p "$port" -A "$pki/ca.pem" -x -C "$@"
    wait "$expid"
    rc=$?
    if ((rc != 0 && rc != 124)) && ! grep -q "^SSL version is" "$work/$tag.out" &&
        grep -q "^wolfSSL_connect error .*$pat" "$work/$tag.out"; then
        ok "wolfssl-client -u $*: refused (exit $rc: $(grep -m1 '^wolfSSL_connect error' "$work/$tag.out"))"
    else
        bad "wolfssl-client -u $*: not refused (exit $rc): $(head -n 20 "$work/$tag.out")"
    fi
    stop "$spid"
}

# ---- the example client against siptls serve --------------------------------
client_ok c12 DTLSv1.2 -v 3

# -A is enforced: a server certificate from another CA is refused
client_refused rogue "certificate verify failed" -v 3 -A "$pki/rogue-ca.pem"

if ((dtls13)); then
    client_ok c13 DTLSv1.3 -v 4
    if client_ok c13cid DTLSv1.3 -v 4 --cid; then
        # "Sending CID is XX..": the CID siptls asked for, which the client's
        # records now carry (client.c prints it after the handshake)
        grep -q "^CID extension was negotiated" "$work/c13cid.out" &&
            grep -q "^Sending CID is [0-9a-fA-F]" "$work/c13cid.out" &&
            ok "wolfssl-client --cid over DTLS 1.3: CID negotiated, its record carrying it reached siptls ($(grep -m1 '^Sending CID is' "$work/c13cid.out"))" ||
            bad "wolfssl-client --cid over DTLS 1.3: no CID: $(grep -i cid "$work/c13cid.out")"
    fi
    client_ok cdcid DTLSv1.3 -v d --cid &&
        { grep -q "^CID extension was negotiated" "$work/cdcid.out" &&
            ok "wolfssl-client -v d --cid: DTLS 1.3 chosen, CID negotiated" ||
            bad "wolfssl-client -v d --cid: no CID: $(grep -i cid "$work/cdcid.out")"; }
else
    client_refused c13 "" -v 4
    client_refused c13cid "" -v 4 --cid
    # offering 1.2 and 1.3 with a CID: siptls answers 1.2, which has no CID
    # in wolfSSL 5.7.2, and the handshake completes without one
    client_ok cdcid DTLSv1.2 -v d --cid &&
        { ! grep -q "CID extension was negotiated" "$work/cdcid.out" &&
            ok "wolfssl-client -v d --cid: DTLS 1.2 chosen, completed without a CID" ||
            bad "wolfssl-client -v d --cid: a CID over DTLS 1.2: $(grep -i cid "$work/cdcid.out")"; }
fi

# DTLS 1.2 with a CID: wolfSSL_dtls_cid_use() refuses a DTLS 1.2 object
# (src/dtls.c: "CID is supported on DTLSv1.3 only"), so the example client
# stops before its first datagram.
example "$work/c12cid.out" wolfssl-client -u -h 127.0.0.1 -p 9 -A "$pki/ca.pem" -x -C -v 3 --cid
wait "$expid"
rc=$?
((rc != 0 && rc != 124)) && grep -q "Can't enable DTLS ConnectionID" "$work/c12cid.out" &&
    ok "wolfssl-client -v 3 --cid: wolfSSL 5.7.2 refuses a CID on DTLS 1.2 (exit $rc, nothing sent)" ||
    bad "wolfssl-client -v 3 --cid (exit $rc): $(head -n 5 "$work/c12cid.out")"

# ---- siptls ping against the example server -----------------------------------
# The server binds 127.0.0.1 port 0 and does not print the port: it is read
# with ss. -d: no client certificate is asked for (ping sends none).
# server_case TAG VERSION ARGS...
server_case() {
    local tag=$1 v=$2 sport rc out
    shift 2
    example "$work/$tag.out" wolfssl-server -u -p 0 -c "$pki/server.pem" -k "$pki/server.key" \
        -A "$pki/ca.pem" -d "$@"
    local gpid=$expid
    if ! sport=$(udp4_port_of_child "$gpid" wolfssl-server); then
        bad "wolfssl-server -u $*: no port: $(cat "$work/$tag.out")"
        return 1
    fi
    out=$(timeout 30 "$bin" ping "dtls:127.0.0.1:$sport" --ca "$pki/ca.pem" --timeout 5 -v 2>&1)
    rc=$?
    if [ "$v" = refused ]; then
        # refused in the handshake: ping exits 4, the server names its error
        if ((rc == 4)) && ! echo "$out" | grep -q "^connected to" &&
            wait_match "SSL_accept error" "$work/$tag.out" 10 "$gpid"; then
            ok "siptls ping -> wolfssl-server -u $*: refused (exit 4; $(grep -m1 'SSL_accept error' "$work/$tag.out"))"
        else
            bad "siptls ping -> wolfssl-server -u $* (exit $rc): $out server: $(cat "$work/$tag.out")"
        fi
        stop "$gpid"
        return 0
    fi
    # the server answers the OPTIONS with its fixed text, then closes
    wait_match "^Client message: OPTIONS sip:127.0.0.1 SIP/2.0" "$work/$tag.out" 10 "$gpid"
    if echo "$out" | grep -q "^connected to 127.0.0.1:$sport: $v .* verified" &&
        grep -q "^SSL version is $v\$" "$work/$tag.out" &&
        grep -q "^Client message: OPTIONS sip:127.0.0.1 SIP/2.0" "$work/$tag.out" &&
        echo "$out" | grep -q "record dropped: framing: malformed message"; then
        ok "siptls ping -> wolfssl-server -u $*: verified $v, the OPTIONS decrypted there, its answer here"
        rc=0
    else
        bad "siptls ping -> wolfssl-server -u $* ($v, exit $rc): ping: $out server: $(cat "$work/$tag.out")"
        rc=1
    fi
    stop "$gpid"
    return $rc
}

server_case s12 DTLSv1.2 -v 3
if ((dtls13)); then
    server_case s13 DTLSv1.3 -v 4
    if server_case s13cid DTLSv1.3 -v 4 --cid; then
        grep -q "^CID extension was negotiated" "$work/s13cid.out" &&
            grep -q "^Sending CID is [0-9a-fA-F]" "$work/s13cid.out" &&
            ok "wolfssl-server --cid over DTLS 1.3: CID negotiated ($(grep -m1 '^Sending CID is' "$work/s13cid.out"))" ||
            bad "wolfssl-server --cid over DTLS 1.3: no CID: $(grep -i cid "$work/s13cid.out")"
    fi
else
    server_case s13 refused -v 4
fi

echo "$passes passed, $fails failed"
[ "$fails" = 0 ]
