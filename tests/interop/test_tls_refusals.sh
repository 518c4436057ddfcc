#!/usr/bin/env bash
# Refusals with real third-party TLS stacks (issue 8 §5, §6):
#  1. `siptls ping` to an openssl s_server that requires a client
#     certificate, without one: the report names the server's alert
#     (handshake_failure in TLS 1.2, certificate_required in TLS 1.3).
#  1b. `siptls ping` over TLS 1.2 signals RFC 5746 and answers a server's
#     HelloRequest with the no_renegotiation warning.
#  2. A client-initiated TLS 1.2 renegotiation (openssl s_client, command
#     `R`) against `siptls serve`: refused as docs/security.md says (a fatal
#     unexpected_message alert from wolfSSL, the flow closed with "peer
#     tried to renegotiate"), while another flow of the same server keeps
#     being served.
# Args: SIPTLS_BIN PKI_DIR BUILD_DIR. Every wait is bounded; only processes
# started here are stopped, by pid.
set -u
bin=$1 pki=$2
command -v openssl > /dev/null || { echo "openssl missing (scripts/test.sh installs it)"; exit 1; }
work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    exec 3>&- 4>&- 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
fails=0 passes=0
ok() { passes=$((passes + 1)); echo "ok   $1"; }
bad() { fails=$((fails + 1)); echo "FAIL $1"; }
has() { # name file pattern (grep -E)
    if grep -Eq -- "$3" "$2"; then ok "$1"; else bad "$1: no /$3/ in: $(cat "$2")"; fi
}
wait_for() { # pattern file [tries of 0.05 s]: bounded
    for _ in $(seq 1 "${3:-200}"); do grep -Eq -- "$1" "$2" && return 0; sleep 0.05; done
    return 1
}

# ---------------------------------------------------------------------------
# 1. ping -> openssl s_server -Verify 1 (a client certificate is required)
for v in tls1_2 tls1_3; do
    mkfifo "$work/s_in.$v"
    exec 3<> "$work/s_in.$v" # keeps s_server's stdin open (EOF would stop it)
    openssl s_server -accept 127.0.0.1:0 -"$v" -cert "$pki/server.pem" -key "$pki/server.key" \
        -Verify 1 -CAfile "$pki/ca.pem" -naccept 1 < "$work/s_in.$v" > "$work/s_server.$v" 2>&1 &
    spid=$!
    pids+=("$spid")
    wait_for "^ACCEPT" "$work/s_server.$v" || { bad "s_server -$v did not start"; continue; }
    sport=$(sed -n 's/^ACCEPT 127.0.0.1:\([0-9]*\).*/\1/p' "$work/s_server.$v")
    timeout 20 "$bin" ping "tls:127.0.0.1:$sport" --ca "$pki/ca.pem" --timeout 5 \
        > "$work/ping.$v" 2>&1
    rc=$?
    [ $rc = 4 ] && ok "ping -> s_server -$v -Verify 1 without a certificate: exit 4" \
        || bad "ping -> s_server -$v: exit $rc: $(cat "$work/ping.$v")"
    case $v in
        tls1_2) want="the server refused the handshake: alert handshake_failure \(40\)" ;;
        tls1_3) want="the server refused the handshake: alert certificate_required \(116\)" ;;
    esac
    has "... names the server's alert ($v)" "$work/ping.$v" "$want"
    kill "$spid" 2>/dev/null; wait "$spid" 2>/dev/null
    exec 3>&-
done

# ---------------------------------------------------------------------------
# 1b. siptls ping as a TLS 1.2 client: it signals RFC 5746 (renegotiation_info,
# §3.4 "MUST"), and a server's HelloRequest gets the no_renegotiation warning
mkfifo "$work/s_in.hr"
exec 3<> "$work/s_in.hr"
openssl s_server -accept 127.0.0.1:0 -tls1_2 -cert "$pki/server.pem" -key "$pki/server.key" \
    -msg -naccept 1 < "$work/s_in.hr" > "$work/s_server.hr" 2>&1 &
spid=$!
pids+=("$spid")
if wait_for "^ACCEPT" "$work/s_server.hr"; then
    sport=$(sed -n 's/^ACCEPT 127.0.0.1:\([0-9]*\).*/\1/p' "$work/s_server.hr")
    timeout 20 "$bin" ping "tls:127.0.0.1:$sport" --ca "$pki/ca.pem" --crlf --timeout 8 \
        > "$work/ping.hr" 2>&1 &
    ppid_=$!
    pids+=("$ppid_")
    if wait_for "^(CIPHER is|Secure Renegotiation)" "$work/s_server.hr"; then
        has "ping (TLS 1.2) offers secure renegotiation (RFC 5746 §3.4)" "$work/s_server.hr" \
            "^Secure Renegotiation IS supported"
        printf 'r\n' >&3 # s_server: send a HelloRequest
        wait_for "warning no_renegotiation" "$work/s_server.hr" \
            && ok "... and answers a HelloRequest with the no_renegotiation warning" \
            || bad "no no_renegotiation warning: $(grep -v '^    ' "$work/s_server.hr" | tail -6)"
    else
        bad "s_server saw no handshake: $(cat "$work/s_server.hr")"
    fi
    wait "$ppid_"
else
    bad "s_server (HelloRequest) did not start"
fi
kill "$spid" 2>/dev/null; wait "$spid" 2>/dev/null
exec 3>&-

# ---------------------------------------------------------------------------
# 2. client-initiated renegotiation against siptls serve
# -v: per-flow lines (with the reason a flow ended) are DEBUG
"$bin" serve -v --listen tls:127.0.0.1:0 --cert "$pki/server.pem" --key "$pki/server.key" \
    > "$work/serve.out" 2> "$work/serve.err" &
pids+=($!)
wait_for "ready on tls:.* port [0-9]+" "$work/serve.out" || { cat "$work/serve.err"; exit 1; }
port=$(sed -n 's/.*ready on tls:.* port \([0-9]*\).*/\1/p' "$work/serve.out" | head -n1)

# Another flow, up before the renegotiation and pinging through it.
timeout 40 "$bin" ping "tls:127.0.0.1:$port" --ca "$pki/ca.pem" --count 8 --interval 0.5 \
    > "$work/other.out" 2>&1 &
other=$!
pids+=("$other")
wait_for "SIP/2.0 200 OK" "$work/other.out" || bad "the other flow got no first answer"

mkfifo "$work/c_in"
exec 4<> "$work/c_in"
timeout 20 openssl s_client -connect "127.0.0.1:$port" -tls1_2 -CAfile "$pki/ca.pem" -msg \
    < "$work/c_in" > "$work/s_client.out" 2>&1 &
cpid=$!
pids+=("$cpid")
wait_for "Secure Renegotiation IS supported" "$work/s_client.out" \
    && ok "the server advertises secure renegotiation (RFC 5746)" \
    || bad "no RFC 5746 support line: $(grep -v '^    ' "$work/s_client.out" | tail -5)"
printf 'R\n' >&4 # s_client: renegotiate
wait "$cpid"
crc=$?
exec 4>&-
grep -q "RENEGOTIATING" "$work/s_client.out" && ok "s_client sent a renegotiation ClientHello" \
    || bad "s_client did not renegotiate: $(grep -v '^    ' "$work/s_client.out" | tail -5)"
has "the server refuses with a fatal unexpected_message alert (wolfSSL cannot send no_renegotiation)" \
    "$work/s_client.out" "<<< TLS 1.2, Alert \[length 0002\], fatal unexpected_message"
[ $crc != 124 ] && ok "... and the connection ends (s_client exit $crc, not our timeout)" \
    || bad "s_client was still connected after the refusal"
wait_for "flow [0-9]+ down: peer tried to renegotiate TLS 1.2" "$work/serve.err" \
    && ok "serve logs why that flow ended" || bad "serve log: $(cat "$work/serve.err")"

wait "$other"
orc=$?
[ $orc = 0 ] && ok "the other flow was served throughout (8 of 8 answered)" \
    || bad "the other flow: exit $orc: $(cat "$work/other.out")"
[ "$(grep -c 'SIP/2.0 200 OK' "$work/other.out")" = 8 ] && ok "... 8 answers" \
    || bad "... answers: $(grep -c 'SIP/2.0 200 OK' "$work/other.out")"
timeout 20 "$bin" ping "tls:127.0.0.1:$port" --ca "$pki/ca.pem" > "$work/after.out" 2>&1 \
    && ok "a new flow after the refusal is served" || bad "new flow: $(cat "$work/after.out")"

echo "test_tls_refusals: $passes passed, $fails failed"
[ "$fails" -eq 0 ]
