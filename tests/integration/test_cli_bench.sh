#!/usr/bin/env bash
# `siptls bench` against `siptls serve` on loopback: every mode over tls:
# (and the request and handshake modes over dtls:) must report successes
# and no errors; --json must parse; usage errors exit 2, a failing run 1.
# Args: SOURCE_DIR BUILD_DIR. Every step is bounded by `timeout` and short
# (--count or --duration 1); a step that depends on a state waits for it
# (serve's stats on SIGUSR1), never for a guessed time. Only the serve
# process started here is stopped, by its pid. The JSON is read with jq
# (scripts/test.sh installs it).
set -u
src=$1 build=$2
bin=$build/siptls
pki=$build/pki
# shellcheck source=../support/shtest.sh
. "$src/tests/support/shtest.sh"
[ -x "$bin" ] || { echo "FAIL no siptls binary"; exit 1; }
[ -f "$pki/ca.pem" ] || { echo "FAIL no test PKI in $pki"; exit 1; }
need jq
shtest_start

# The loopback DTLS handshakes all come from 127.0.0.1: lift the
# per-source handshake rate limit for this server.
printf 'dtls_handshake_rate = 0\n' > "$work/serve.conf"
"$bin" serve -c "$work/serve.conf" --listen tls:127.0.0.1:0 --listen dtls:127.0.0.1:0 \
    --cert "$pki/server.pem" --key "$pki/server.key" -q > "$work/serve.out" 2> "$work/serve.err" &
serve_pid=$!
tport=$(serve_port "$work/serve.out" tls "$serve_pid") &&
    dport=$(serve_port "$work/serve.out" dtls "$serve_pid") ||
    { echo "serve did not start"; cat "$work/serve.err"; exit 1; }

# srv_stats: ask serve for its statistics (SIGUSR1) and wait for the new
# line (up to 20 s); it is printed ("" when none came).
srv_stats() {
    local n end=$((SECONDS + 20))
    n=$(grep -c '^stats: ' "$work/serve.err")
    kill -USR1 "$serve_pid" || return 1
    while :; do
        if [ "$(grep -c '^stats: ' "$work/serve.err")" -gt "$n" ]; then
            grep '^stats: ' "$work/serve.err" | tail -n1
            return 0
        fi
        ((SECONDS < end)) || return 1
        sleep 0.05
    done
}
# srv_stat NAME: one figure of serve's stats ("msgs in", "(tls": the TLS
# flows open).
srv_stat() {
    srv_stats | sed -n "s/.*$1 \([0-9]*\).*/\1/p"
}
# srv_wait_tls_flows N: until serve has N TLS flows open (up to 20 s): the
# connections of the runs before are gone (N = 0).
srv_wait_tls_flows() {
    local end=$((SECONDS + 20))
    while :; do
        open=$(srv_stat "(tls")
        [ "$open" = "$1" ] && return 0
        ((SECONDS < end)) || return 1
        sleep 0.2
    done
}

ops='' errs='' e_verify='' e_connect='' e_non2xx='' version='' resumed='' up='' rss='' cpu=''
rss0='' rss1='' interrupted=''
# fields FILE: check that FILE is JSON (jq), then set shell variables from
# it: ops errs e_verify e_connect e_non2xx version resumed up rss rss0 rss1
# cpu interrupted (a JSON null is the word null).
fields() {
    jq -e . "$1" > /dev/null 2>&1 || return 1
    eval "$(jq -r '@sh "ops=\(.ops) errs=\(.errors.total) e_verify=\(.errors.verify)
        e_connect=\(.errors.connect) e_non2xx=\(.errors["non-2xx"]) version=\(.tls_version)
        resumed=\(.resumed) up=\(.connections_up) rss=\(.server.rss_per_conn_bytes)
        rss0=\(.server.rss_before_kib) rss1=\(.server.rss_after_kib)
        cpu=\(.server.cpu_us_per_op) interrupted=\(.interrupted)"' "$1")"
}

# run NAME EXPECTED-EXIT bench-args...: runs bench with --json and checks
# the exit status, that the JSON parses, ops > 0 and errors.total == 0.
run() {
    local name=$1 want=$2
    shift 2
    timeout 60 "$bin" bench "$@" --json > "$work/out.json" 2> "$work/err.txt"
    local rc=$?
    if [ "$rc" != "$want" ]; then
        bad "$name (exit $rc, want $want): $(cat "$work/err.txt") $(cat "$work/out.json")"
        return 1
    fi
    if ! fields "$work/out.json"; then
        bad "$name: --json output does not parse: $(cat "$work/out.json")"
        return 1
    fi
    if [ "$want" = 0 ] && { [ "$ops" -le 0 ] || [ "$errs" != 0 ]; }; then
        bad "$name: ops $ops errors $errs: $(cat "$work/out.json")"
        return 1
    fi
    ok "$name (ops $ops, errors $errs)"
    return 0
}

tls="tls:127.0.0.1:$tport"
dtls="dtls:127.0.0.1:$dport"
ca=(--ca "$pki/ca.pem")

run "msgs tls closed loop" 0 "$tls" "${ca[@]}" --mode msgs -C 3 -w 4 --count 600 --server-pid "$serve_pid"
[ "$cpu" != "null" ] && ok "server CPU per request reported ($cpu us)" || bad "no server CPU figure"
run "msgs tls open loop --rate" 0 "$tls" "${ca[@]}" -C 2 --rate 400 --duration 1
run "msgs tls --warmup" 0 "$tls" "${ca[@]}" -C 2 -w 2 --warmup 0.3 --duration 0.7
run "msgs dtls" 0 "$dtls" "${ca[@]}" -C 3 -w 4 --count 600
run "handshakes tls 1.2" 0 "$tls" "${ca[@]}" --mode handshakes -C 2 --tls 1.2 --count 20
[ "$version" = "TLSv1.2" ] && ok "--tls 1.2 negotiated TLSv1.2" || bad "--tls 1.2 gave $version"
[ "$resumed" = 0 ] && ok "handshakes mode: no resumption" ||
    bad "handshakes mode resumed"
run "handshakes tls 1.3" 0 "$tls" "${ca[@]}" --mode handshakes -C 2 --tls 1.3 --count 20
[ "$version" = "TLSv1.3" ] && ok "--tls 1.3 negotiated TLSv1.3" || bad "--tls 1.3 gave $version"
run "handshakes dtls" 0 "$dtls" "${ca[@]}" --mode handshakes -C 2 --count 20
run "handshakes dtls 1.2" 0 "$dtls" "${ca[@]}" --mode handshakes -C 2 --tls 1.2 --count 10
[ "$version" = "DTLSv1.2" ] && ok "dtls --tls 1.2 negotiated DTLSv1.2" || bad "dtls --tls 1.2 gave $version"
if "$bin" --version | grep -q DTLSv1.3; then
    run "handshakes dtls 1.3" 0 "$dtls" "${ca[@]}" --mode handshakes -C 2 --tls 1.3 --count 10
    [ "$version" = "DTLSv1.3" ] && ok "dtls --tls 1.3 negotiated DTLSv1.3" ||
        bad "dtls --tls 1.3 gave $version"
    dtls13_usage=""
else
    dtls13_usage="$dtls --tls 1.3" # Debian's 5.5.4: no DTLS 1.3
fi
for v in 1.2 1.3; do
    run "resume tls $v" 0 "$tls" "${ca[@]}" --mode resume -C 1 --tls $v --count 20
    [ "$resumed" -gt 0 ] && ok "resume tls $v: $resumed of 20 resumed" || bad "resume tls $v: nothing resumed"
done
# idle: the bench holds the connections --duration once all 20 are up
# (the hold starts on that state, not after a guessed time). The server's
# RSS is read when the bench starts and when the hold ends; the figure must
# be what those two readings give: (after - before) KiB / connections up,
# or null when the RSS fell meanwhile (an allocator may hand memory back:
# ASan's, or glibc's trim). Whether the server's RSS grows is up to its
# allocator, not to the bench; the bench must read and report it right.
# The flows of the runs before are gone first (serve's stats), so the
# "before" reading does not include them.
srv_wait_tls_flows 0 || bad "serve still has $open TLS flows open before the idle run"
run "idle tls" 0 "$tls" "${ca[@]}" --mode idle -C 20 --duration 0.5 --rss-pid "$serve_pid"
[ "$up" = 20 ] && ok "idle: 20 connections up" || bad "idle: $up up"
if [ "$rss0" -gt 0 ] 2> /dev/null && [ "$rss1" -gt 0 ] 2> /dev/null; then
    ok "idle: server RSS read before and after ($rss0 -> $rss1 KiB)"
else
    bad "idle: server RSS not read: before '$rss0' after '$rss1'"
fi
want=$(awk -v a="$rss0" -v b="$rss1" -v n="$up" \
    'BEGIN { if (b < a || n <= 0) print "null"; else printf "%.0f\n", (b - a) * 1024 / n }')
got=$rss
[ "$rss" = null ] || got=$(awk -v r="$rss" 'BEGIN { printf "%.0f\n", r }')
[ "$got" = "$want" ] && ok "idle: RSS per connection as the readings give ($rss bytes)" ||
    bad "idle: RSS per connection $rss, the readings give $want: $(cat "$work/out.json")"
run "idle dtls" 0 "$dtls" "${ca[@]}" --mode idle -C 20 --duration 0.5

# A message file with sipp-style placeholders and LF line ends.
printf 'OPTIONS sip:localhost SIP/2.0\nVia: SIP/2.0/[transport] bench.invalid;branch=[branch]\nMax-Forwards: 70\nFrom: <sip:a@bench.invalid>;tag=1\nTo: <sip:localhost>\nCall-ID: [call_id]\nCSeq: [cseq] OPTIONS\nContent-Length: 0\n\n' > "$work/msg.sip"
run "msgs --message file" 0 "$tls" "${ca[@]}" -C 2 -w 3 --count 100 --message "$work/msg.sip"
# An INVITE gets serve's 501: counted as non-2xx errors, exit 1.
sed 's/OPTIONS/INVITE/g' "$work/msg.sip" > "$work/invite.sip"
run "non-2xx answers exit 1" 1 "$tls" "${ca[@]}" --count 10 --message "$work/invite.sip"
[ "$e_non2xx" = 10 ] && ok "10 non-2xx counted" ||
    bad "non-2xx: $(cat "$work/out.json")"

# Failures: the wrong CA (verify), a closed port (connect).
run "wrong CA exits 1" 1 "$tls" --ca "$pki/rogue-ca.pem" --mode handshakes --count 3
[ "$e_verify" -gt 0 ] && ok "verify errors counted" ||
    bad "wrong CA: $(cat "$work/out.json")"
run "closed port exits 1" 1 "tls:127.0.0.1:1" "${ca[@]}" --count 3
[ "$e_connect" -gt 0 ] && ok "connect errors counted" ||
    bad "closed port: $(cat "$work/out.json")"

# Usage.
timeout 10 "$bin" bench --help > /dev/null 2>&1
[ $? = 0 ] && ok "--help exits 0" || bad "--help"
for args in "" "udp:127.0.0.1:5060" "$tls --mode nope" "$tls --window 0" ${dtls13_usage:+"$dtls13_usage"} \
    "$tls --key x.key" "$tls --mode idle --rate 5" "$tls --duration -1"; do
    # shellcheck disable=SC2086
    timeout 10 "$bin" bench $args > /dev/null 2>&1
    rc=$?
    [ $rc = 2 ] && ok "usage error exits 2: '$args'" || bad "usage error '$args' exited $rc"
done

# SIGINT ends a long run early with the summary so far. The signal is sent
# once the bench is sending (serve's "msgs in" has grown), so its handler
# is in place.
# Not under `timeout`: the signal must reach the bench itself (timeout would
# take it and exit 130); --duration bounds the run anyway.
msgs0=$(srv_stat "msgs in")
"$bin" bench "$tls" "${ca[@]}" --duration 25 --json > "$work/int.json" 2>&1 &
bpid=$!
sending=0
end=$((SECONDS + 20))
while ((SECONDS < end)); do
    alive "$bpid" || break
    m=$(srv_stat "msgs in")
    [ -n "$m" ] && [ -n "$msgs0" ] && [ "$m" -gt "$msgs0" ] && { sending=1; break; }
    sleep 0.2
done
[ $sending = 1 ] || bad "SIGINT: the bench never sent (serve msgs in ${msgs0:-?} -> ${m:-?})"
kill -INT $bpid
wait $bpid
rc=$?
if [ $rc = 0 ] && fields "$work/int.json" && [ "$interrupted" = true ]; then
    ok "SIGINT: summary printed, exit 0"
else
    bad "SIGINT: exit $rc: $(cat "$work/int.json")"
fi

kill "$serve_pid" && wait "$serve_pid"
serve_pid=
echo "$passes passed, $fails failed"
[ $fails = 0 ]
