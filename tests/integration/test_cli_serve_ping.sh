#!/usr/bin/env bash
# End to end: `siptls serve` and `siptls ping` over TLS on loopback, with the
# test PKI. Args: SOURCE_DIR BUILD_DIR. Every step is bounded by `timeout`;
# each waits for the state it checks (a port in serve's banner, a log line,
# an answer), never for a guessed time. Only the serve process started here
# is stopped, by its pid.
set -u
src=$1 build=$2
bin=$build/siptls
pki=$build/pki
# shellcheck source=../support/shtest.sh
. "$src/tests/support/shtest.sh"
[ -x "$bin" ] || { echo "FAIL no siptls binary"; exit 1; }
need openssl
shtest_start
check() { # name expected-exit actual-exit
    if [ "$2" = "$3" ]; then passes=$((passes + 1)); echo "ok   $1";
    else fails=$((fails + 1)); echo "FAIL $1 (exit $3, want $2)"; fi
}

# serve_up FILE: the port of the serve just started ($serve_pid) from its
# banner in FILE, once it listens; a failure when it does not.
serve_up() {
    port=$(serve_port "$1" tls "$serve_pid") && return 0
    fails=$((fails + 1)); echo "FAIL serve did not start: $(cat "${1%.out}.err")"; port=0
}

start_serve() { # extra args...
    "$bin" serve --listen tls:127.0.0.1:0 --cert "$pki/server.pem" --key "$pki/server.key" \
        "$@" > "$work/serve.out" 2> "$work/serve.err" &
    serve_pid=$!
    port=$(serve_port "$work/serve.out" tls "$serve_pid") && return 0
    echo "serve did not start"; cat "$work/serve.err"; exit 1
}

start_serve --stats-interval 60
out=$(timeout 20 "$bin" ping "tls:127.0.0.1:$port" --ca "$pki/ca.pem" --count 2 --interval 0.1 2>&1); rc=$?
check "ping OPTIONS -> 200" 0 $rc
echo "$out" | grep -q "SIP/2.0 200 OK" || { fails=$((fails + 1)); echo "FAIL no 200 line: $out"; }
echo "$out" | grep -q "TLSv1.3" || { fails=$((fails + 1)); echo "FAIL no TLS version: $out"; }
echo "$out" | grep -q "CN=localhost" || { fails=$((fails + 1)); echo "FAIL no peer subject: $out"; }
# The default cipher order, decided at run time, is on the start banner.
grep -q "^siptls serve: cipher order: \(AES-GCM\|ChaCha20-Poly1305\) first" "$work/serve.out" &&
    { passes=$((passes + 1)); echo "ok   serve prints the cipher order"; } ||
    { fails=$((fails + 1)); echo "FAIL no cipher order line: $(cat "$work/serve.out")"; }

timeout 20 "$bin" ping "tls:localhost:$port" --ca "$pki/ca.pem" --crlf > "$work/crlf.out" 2>&1
check "ping --crlf -> pong" 0 $?
grep -q pong "$work/crlf.out" || { fails=$((fails + 1)); echo "FAIL no pong"; }

timeout 20 "$bin" ping "tls:127.0.0.1:$port" --ca "$pki/rogue-ca.pem" > "$work/rogue.out" 2>&1
check "ping with the wrong CA is refused" 4 $?
grep -qi "not trusted\|handshake" "$work/rogue.out" || { fails=$((fails + 1)); echo "FAIL no reason: $(cat "$work/rogue.out")"; }

timeout 20 "$bin" ping "tls:127.0.0.1:$port" --insecure > /dev/null 2>&1
check "ping --insecure" 0 $?

timeout 20 "$bin" ping "tls:wrong.example.test:$port" --ca "$pki/ca.pem" > /dev/null 2>&1
check "ping an unresolvable name fails" 4 $?

timeout 20 "$bin" ping "tls:127.0.0.1:1" --ca "$pki/ca.pem" > /dev/null 2>&1
check "ping a closed port fails" 4 $?

timeout 10 "$bin" ping "udp:127.0.0.1:5060" > /dev/null 2>&1
check "ping a bad URI is a usage error" 2 $?

wait_for() { # pattern file: until the line is in (up to 20 s: sanitizer builds are slow)
    wait_match "$1" "$2" 20 "$serve_pid"
}
# the bench's text report against this server, with its CPU and memory read from /proc
out=$(timeout 30 "$bin" bench "tls:127.0.0.1:$port" --ca "$pki/ca.pem" -C 2 -w 2 --count 200 --server-pid "$serve_pid" --rss-pid "$serve_pid" 2>&1); rc=$?
check "bench text report" 0 $rc
echo "$out" | grep -q "requests .*2xx 200" && echo "$out" | grep -q "latency .*p50" && echo "$out" | grep -q "server CPU" \
    && { passes=$((passes + 1)); echo "ok   bench report has requests, latency and server CPU"; } || { fails=$((fails + 1)); echo "FAIL bench report: $out"; }
kill -USR1 "$serve_pid"
wait_for "stats: flows open" "$work/serve.err" || { fails=$((fails + 1)); echo "FAIL no stats on SIGUSR1"; }
kill -HUP "$serve_pid"
wait_for "configuration reloaded" "$work/serve.err" || { fails=$((fails + 1)); echo "FAIL no reload on SIGHUP"; }
# one worker, listen lines with port 0, unchanged: not reported as changed
! grep -aq "differs in the new configuration" "$work/serve.err" && { passes=$((passes + 1)); echo "ok   an unchanged port-0 listen line is not a change on SIGHUP"; } \
    || { fails=$((fails + 1)); echo "FAIL $(grep -a differs "$work/serve.err" | head -n1)"; }
timeout 20 "$bin" ping "tls:127.0.0.1:$port" --ca "$pki/ca.pem" > /dev/null 2>&1
check "ping after reload" 0 $?
kill -TERM "$serve_pid"
wait "$serve_pid"; rc=$?
serve_pid=
check "serve exits 0 on SIGTERM" 0 $rc
# per-flow lines are DEBUG (-v): at the default level a busy server logs none
! grep -q "flow .* up" "$work/serve.err" || { fails=$((fails + 1)); echo "FAIL per-flow line at the default log level"; }
grep -q "stats: flows open .* accepted [1-9]" "$work/serve.err" || { fails=$((fails + 1)); echo "FAIL no accepted count in the stats line"; }

# require-cert: a client without a certificate is refused, one with is served
start_serve --ca "$pki/ca.pem" --require-cert
timeout 20 "$bin" ping "tls:127.0.0.1:$port" --ca "$pki/ca.pem" > /dev/null 2>&1
check "require-cert refuses a client without certificate" 4 $?
timeout 20 "$bin" ping "tls:127.0.0.1:$port" --ca "$pki/ca.pem" --cert "$pki/client.pem" --key "$pki/client.key" > "$work/pc.out" 2>&1
rc=$?
check "require-cert serves a client with a good certificate" 0 $rc
# (seen once in CI on Debian's wolfSSL, exit 4, not reproduced: say why next time)
[ "$rc" = 0 ] || echo "   ping: $(cat "$work/pc.out") / serve: $(tail -n 5 "$work/serve.err")"
timeout 20 "$bin" ping "tls:127.0.0.1:$port" --ca "$pki/ca.pem" --cert "$pki/rogue-client.pem" --key "$pki/rogue-client.key" > /dev/null 2>&1
check "require-cert refuses a certificate from an untrusted CA" 4 $?
kill -TERM "$serve_pid"; wait "$serve_pid"; serve_pid=

# development certificate when none is given
"$bin" serve --listen tls:127.0.0.1:0 > "$work/dev.out" 2> "$work/dev.err" &
serve_pid=$!
serve_up "$work/dev.out"
grep -q "SELF-SIGNED development" "$work/dev.err" || { fails=$((fails + 1)); echo "FAIL dev cert not announced"; }
timeout 20 "$bin" ping "tls:127.0.0.1:$port" --insecure > /dev/null 2>&1
check "serve with the development certificate" 0 $?
timeout 20 "$bin" ping "tls:127.0.0.1:$port" --ca "$pki/ca.pem" > /dev/null 2>&1
check "the development certificate does not verify against another CA" 4 $?
kill -TERM "$serve_pid"; wait "$serve_pid"; serve_pid=

# outbound verification: a server with the wrong name, an expired one
for c in wrongname expired; do
    "$bin" serve --listen tls:127.0.0.1:0 --cert "$pki/$c.pem" --key "$pki/$c.key" > "$work/$c.out" 2> "$work/$c.err" &
    serve_pid=$!
    serve_up "$work/$c.out"
    out=$(timeout 20 "$bin" ping "tls:127.0.0.1:$port" --ca "$pki/ca.pem" 2>&1); rc=$?
    check "ping refuses a server certificate: $c" 4 $rc
    case $c in
        wrongname) echo "$out" | grep -q "RFC 5922" || { fails=$((fails + 1)); echo "FAIL wrongname reason: $out"; } ;;
        expired) echo "$out" | grep -qi "not trusted\|handshake" || { fails=$((fails + 1)); echo "FAIL expired reason: $out"; } ;;
    esac
    kill -TERM "$serve_pid"; wait "$serve_pid"; serve_pid=
done

# a config file: SNI picks the server domain, a trusted client domain is
# logged as trusted, --reply answers other requests, --keylog writes secrets
cat > "$work/siptls.conf" <<CONF
# test configuration
listen = tls:127.0.0.1:0
server_domain = alt
match_sip_domain = [alt]alt.example.test
certificate = [alt]$pki/alt.pem
private_key = [alt]$pki/alt.key
trusted_domain = client.example.test
CONF
"$bin" serve --config "$work/siptls.conf" --cert "$pki/server.pem" --key "$pki/server.key" --ca "$pki/ca.pem" \
    --verify-cert --reply 486 --keylog "$work/keys.log" --verbose > "$work/cfg.out" 2> "$work/cfg.err" &
serve_pid=$!
serve_up "$work/cfg.out"
subj=$(timeout 10 openssl s_client -connect "127.0.0.1:$port" -servername alt.example.test -tls1_2 < /dev/null 2>/dev/null | grep -m1 "^subject=")
case $subj in *alt.example.test*) passes=$((passes + 1)); echo "ok   SNI alt.example.test -> alt certificate" ;; *) fails=$((fails + 1)); echo "FAIL SNI: $subj" ;; esac
subj=$(timeout 10 openssl s_client -connect "127.0.0.1:$port" -tls1_2 < /dev/null 2>/dev/null | grep -m1 "^subject=")
case $subj in *CN*=*localhost*) passes=$((passes + 1)); echo "ok   no SNI -> default certificate" ;; *) fails=$((fails + 1)); echo "FAIL default cert: $subj" ;; esac
timeout 20 "$bin" ping "tls:127.0.0.1:$port" --ca "$pki/ca.pem" --cert "$pki/client.pem" --key "$pki/client.key" > /dev/null 2>&1
check "ping with a client certificate of a trusted domain" 0 $?
wait_for "TRUSTED domain client.example.test" "$work/cfg.err" || { fails=$((fails + 1)); echo "FAIL trusted domain not logged"; }
invite=$'INVITE sip:bob@localhost SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1;branch=z9hG4bKinv1\r\nv: SIP/2.0/TLS 10.0.0.1;branch=z9hG4bKinv0\r\nMax-Forwards: 70\r\nf: <sip:a@localhost>;tag=9\r\nt: <sip:bob@localhost>\r\ni: inv1@test\r\nCSeq: 1 INVITE\r\nl: 0\r\n\r\n'
ack=$'ACK sip:bob@localhost SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1;branch=z9hG4bKinv1\r\nFrom: <sip:a@localhost>;tag=9\r\nTo: <sip:bob@localhost>;tag=x\r\nCall-ID: inv1@test\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n'
resp=$'SIP/2.0 200 OK\r\nVia: SIP/2.0/TLS 127.0.0.1;branch=z9hG4bKx\r\nFrom: <sip:a@localhost>;tag=9\r\nTo: <sip:bob@localhost>;tag=x\r\nCall-ID: r@test\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n'
# An OPTIONS after them is answered after whatever they would provoke (one
# connection, in order): its answer bounds the wait for answers that must
# not come.
last=$'OPTIONS sip:localhost SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1;branch=z9hG4bKlast\r\nMax-Forwards: 70\r\nFrom: <sip:a@localhost>;tag=9\r\nTo: <sip:localhost>\r\nCall-ID: last@test\r\nCSeq: 2 OPTIONS\r\nContent-Length: 0\r\n\r\n'
converse "$work/inv.out" "$invite$ack$resp$last" "^Call-ID: last@test" \
    timeout 20 openssl s_client -connect "127.0.0.1:$port" -quiet -no_ign_eof
# every answer before the last one's Call-ID, and the first answer alone
all=$(sed -n '/^Call-ID: last@test/q;p' "$work/inv.out")
out=$(awk '/^SIP\/2\.0 / {n++} n == 1' "$work/inv.out")
grep -q "^Call-ID: last@test" "$work/inv.out" && { passes=$((passes + 1)); echo "ok   the OPTIONS after them is answered"; } || { fails=$((fails + 1)); echo "FAIL no answer to the last OPTIONS: $(cat "$work/inv.out")"; }
echo "$out" | grep -q "SIP/2.0 486 Busy Here" && { passes=$((passes + 1)); echo "ok   --reply 486 for INVITE"; } || { fails=$((fails + 1)); echo "FAIL INVITE reply: $out"; }
[ "$(echo "$all" | grep -c '^SIP/2.0')" = 2 ] && { passes=$((passes + 1)); echo "ok   ACK and responses are not answered"; } || { fails=$((fails + 1)); echo "FAIL extra answers: $all"; }
echo "$out" | grep -q "^To: <sip:bob@localhost>;tag=" && { passes=$((passes + 1)); echo "ok   To-tag added"; } || { fails=$((fails + 1)); echo "FAIL no To-tag: $out"; }
[ "$(echo "$out" | grep -c '^Via: ')" = 2 ] && { passes=$((passes + 1)); echo "ok   both Vias copied"; } || { fails=$((fails + 1)); echo "FAIL Vias: $out"; }
kill -TERM "$serve_pid"; wait "$serve_pid"; serve_pid=
grep -q "^CLIENT_RANDOM [0-9a-f]* [0-9a-f]*$" "$work/keys.log" && { passes=$((passes + 1)); echo "ok   key log written (TLS 1.2)"; } || { fails=$((fails + 1)); echo "FAIL key log: $(cat "$work/keys.log" 2>&1)"; }
"$bin" serve --config /nonexistent.conf > /dev/null 2>&1; check "serve with a missing config file" 1 $?
"$bin" serve --cert "$pki/server.pem" > /dev/null 2>&1; check "serve --cert without --key, no key in the file" 1 $?
"$bin" serve --reply 99 > /dev/null 2>&1; check "serve --reply out of range" 2 $?
"$bin" serve --reply 486x > /dev/null 2>&1; check "serve --reply with trailing text" 2 $?
"$bin" serve --stats-interval abc > /dev/null 2>&1; check "serve --stats-interval not a number" 2 $?
"$bin" serve --stats-interval -1 > /dev/null 2>&1; check "serve --stats-interval negative" 2 $?
"$bin" serve --workers 2x > /dev/null 2>&1; check "serve --workers with trailing text" 2 $?

# --workers: several engines share the port (SO_REUSEPORT), over TLS and DTLS
"$bin" serve --workers 2 --listen tls:127.0.0.1:0 --listen dtls:127.0.0.1:0 --cert "$pki/server.pem" --key "$pki/server.key" > "$work/w.out" 2> "$work/w.err" &
serve_pid=$!
serve_up "$work/w.out"
dport=$(serve_port "$work/w.out" dtls "$serve_pid") || dport=0
okp=0 okd=0
for _ in $(seq 1 10); do
    timeout 20 "$bin" ping "tls:127.0.0.1:$port" --ca "$pki/ca.pem" > /dev/null 2>&1 && okp=$((okp + 1))
    timeout 20 "$bin" ping "dtls:127.0.0.1:$dport" --ca "$pki/ca.pem" > /dev/null 2>&1 && okd=$((okd + 1))
done
check "10 pings to 2 workers" 10 $okp
# each ping comes from a new port: the kernel spreads them over both workers
check "10 DTLS pings to 2 workers" 10 $okd
kill -TERM "$serve_pid"; wait "$serve_pid"; rc=$?; serve_pid=
check "serve --workers 2 exits 0 on SIGTERM" 0 $rc
[ "$(grep -c '^worker [01] stats' "$work/w.err")" = 2 ] && { passes=$((passes + 1)); echo "ok   one stats line per worker"; } || { fails=$((fails + 1)); echo "FAIL worker stats: $(cat "$work/w.err")"; }
accepted=$(sed -n 's/^worker [01] stats: .* accepted \([0-9]*\),.*/\1/p' "$work/w.err" | awk "{s+=\$1} END {print s}")
check "the workers accepted every connection between them" 20 "$accepted"
cookies=$(sed -n 's/^worker [01] stats: .* dtls cookies \([0-9]*\) .*/\1/p' "$work/w.err" | awk "{s+=\$1} END {print s}")
check "a DTLS cookie exchange (HelloVerifyRequest) for every DTLS ping" 1 "$((cookies >= 10))"
"$bin" serve --workers 0 > /dev/null 2>&1; check "serve --workers 0 is refused" 2 $?
"$bin" serve --quiet --listen tls:127.0.0.1:0 > "$work/q.out" 2> "$work/q.err" &
serve_pid=$!
serve_up "$work/q.out"
timeout 20 "$bin" ping "tls:127.0.0.1:$port" --insecure > /dev/null 2>&1; check "ping serve --quiet" 0 $?
kill -TERM "$serve_pid"; wait "$serve_pid"; serve_pid=
! grep -q "flow .* up" "$work/q.err"; check "--quiet logs no flow lines" 0 $?

"$bin" ping > /dev/null 2>&1; check "ping without a URI" 2 $?
"$bin" ping tls:127.0.0.1:5061 --count 0 > /dev/null 2>&1; check "ping --count 0" 2 $?
"$bin" ping tls:127.0.0.1:5061 --key "$pki/client.key" > /dev/null 2>&1; check "ping --key without --cert" 2 $?
"$bin" ping tls:127.0.0.1:5061 --config /nonexistent > /dev/null 2>&1; check "ping with a missing config" 2 $?
"$bin" ping tls:127.0.0.1:5061 --bogus > /dev/null 2>&1; check "ping with an unknown option" 2 $?
"$bin" serve --bogus > /dev/null 2>&1; check "serve with an unknown option" 2 $?
"$bin" serve extra-arg > /dev/null 2>&1; check "serve with a stray argument" 2 $?
"$bin" > /dev/null 2>&1; check "no command" 2 $?
"$bin" help | grep -q serve; check "help" 0 $?
"$bin" config --config "$work/siptls.conf" > "$work/dump.conf"; check "config check of a good file" 0 $?
grep -q "^trusted_domain = \"\?client.example.test" "$work/dump.conf" && { passes=$((passes + 1)); echo "ok   config dump shows the file's values"; } || { fails=$((fails + 1)); echo "FAIL config dump: $(head -5 "$work/dump.conf")"; }
"$bin" config --config "$work/dump.conf" > /dev/null; check "the dump loads again" 0 $?
printf 'tls_port = 5061\ntls_max_msg_chunks = lots\n' > "$work/bad.conf"
"$bin" config --config "$work/bad.conf" 2> "$work/bad.err" > /dev/null; check "config check of a bad file" 1 $?
grep -q "bad.conf:2: tls_max_msg_chunks" "$work/bad.err" && { passes=$((passes + 1)); echo "ok   the error names file:line:key"; } || { fails=$((fails + 1)); echo "FAIL error text: $(cat "$work/bad.err")"; }
"$bin" config | grep -q "^tls_port = 5061"; check "config prints the defaults" 0 $?
"$bin" config --help > /dev/null; check "config --help" 0 $?
"$bin" config --bogus > /dev/null 2>&1; check "config with an unknown option" 2 $?
"$bin" config "$work/siptls.conf" stray > /dev/null 2>&1; check "config with a stray argument" 2 $?
"$bin" serve --help | grep -q -- "--listen" ; check "serve --help" 0 $?
"$bin" ping --help | grep -q -- "--crlf" ; check "ping --help" 0 $?
"$bin" --version | grep -q "wolfSSL" ; check "--version" 0 $?
SIPTLS_CPU_AESNI=0 "$bin" --version | grep -q "^cipher order: ChaCha20-Poly1305 first (no AES-NI)$"
check "--version: SIPTLS_CPU_AESNI=0 puts ChaCha20 first" 0 $?
"$bin" bogus > /dev/null 2>&1; check "unknown command" 2 $?
"$bin" serve --listen nope:1 > /dev/null 2>&1; check "serve with a bad listen URI" 1 $?

echo "$passes passed, $fails failed"
[ "$fails" = 0 ]
