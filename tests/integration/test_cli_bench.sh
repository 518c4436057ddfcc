#!/usr/bin/env bash
# `siptls bench` against `siptls serve` on loopback: every mode over tls:
# (and the request and handshake modes over dtls:) must report successes
# and no errors; --json must parse; usage errors exit 2, a failing run 1.
# Args: SOURCE_DIR BUILD_DIR. Every step is bounded by `timeout` and short
# (--count or --duration 1); only the serve process started here is
# stopped, by its pid.
set -u
build=$2 # $1, the source folder, is not needed
bin=$build/siptls
pki=$build/pki
[ -x "$bin" ] || { echo "no siptls binary"; exit 77; }
[ -f "$pki/ca.pem" ] || { echo "no test PKI in $pki"; exit 77; }
# The system python3 starts faster than a pyenv shim; either will do.
py=$(command -v /usr/bin/python3 || command -v python3) || { echo "no python3"; exit 77; }
work=$(mktemp -d)
serve_pid=
cleanup() {
    [ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null && wait "$serve_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
fails=0 passes=0
ok() { passes=$((passes + 1)); echo "ok   $1"; }
bad() { fails=$((fails + 1)); echo "FAIL $1"; }

# The loopback DTLS handshakes all come from 127.0.0.1: lift the
# per-source handshake rate limit for this server.
printf 'dtls_handshake_rate = 0\n' > "$work/serve.conf"
"$bin" serve -c "$work/serve.conf" --listen tls:127.0.0.1:0 --listen dtls:127.0.0.1:0 \
    --cert "$pki/server.pem" --key "$pki/server.key" -q > "$work/serve.out" 2> "$work/serve.err" &
serve_pid=$!
tport='' dport=''
for _ in $(seq 1 100); do
    tport=$(sed -n 's/.*ready on tls:.* port \([0-9]*\).*/\1/p' "$work/serve.out" | head -n1)
    dport=$(sed -n 's/.*ready on dtls:.* port \([0-9]*\).*/\1/p' "$work/serve.out" | head -n1)
    [ -n "$tport" ] && [ -n "$dport" ] && break
    sleep 0.05
done
[ -n "$tport" ] && [ -n "$dport" ] || { echo "serve did not start"; cat "$work/serve.err"; exit 1; }

ops='' errs='' e_verify='' e_connect='' e_non2xx='' version='' resumed='' up='' rss='' cpu=''
interrupted=''
# fields FILE: check that FILE parses (python3 -m json.tool), then set shell
# variables from it in one python start: ops errs e_verify e_connect
# e_non2xx version resumed up rss cpu interrupted.
fields() {
    "$py" -m json.tool "$1" > /dev/null 2>&1 || return 1
    eval "$("$py" -c '
import json, sys
j = json.load(open(sys.argv[1]))
e = j["errors"]
for k, v in (("ops", j["ops"]), ("errs", e["total"]), ("e_verify", e["verify"]),
             ("e_connect", e["connect"]), ("e_non2xx", e["non-2xx"]),
             ("version", j["tls_version"]), ("resumed", j["resumed"]),
             ("up", j["connections_up"]), ("rss", j["server"]["rss_per_conn_bytes"]),
             ("cpu", j["server"]["cpu_us_per_op"]), ("interrupted", j["interrupted"])):
    print("%s=%s" % (k, json.dumps(v).replace("\"", "")))
' "$1")"
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
for v in 1.2 1.3; do
    run "resume tls $v" 0 "$tls" "${ca[@]}" --mode resume -C 1 --tls $v --count 20
    [ "$resumed" -gt 0 ] && ok "resume tls $v: $resumed of 20 resumed" || bad "resume tls $v: nothing resumed"
done
run "idle tls" 0 "$tls" "${ca[@]}" --mode idle -C 20 --duration 0.5 --rss-pid "$serve_pid"
[ "$up" = 20 ] && ok "idle: 20 connections up" || bad "idle: $up up"
[ "$rss" != "null" ] && ok "idle: RSS per connection reported ($rss bytes)" || bad "idle: no RSS figure"
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
for args in "" "udp:127.0.0.1:5060" "$tls --mode nope" "$tls --window 0" "$dtls --tls 1.3" \
    "$tls --key x.key" "$tls --mode idle --rate 5" "$tls --duration -1"; do
    # shellcheck disable=SC2086
    timeout 10 "$bin" bench $args > /dev/null 2>&1
    rc=$?
    [ $rc = 2 ] && ok "usage error exits 2: '$args'" || bad "usage error '$args' exited $rc"
done

# SIGINT ends a long run early with the summary so far.
# Not under `timeout`: the signal must reach the bench itself (timeout would
# take it and exit 130); --duration bounds the run anyway.
"$bin" bench "$tls" "${ca[@]}" --duration 25 --json > "$work/int.json" 2>&1 &
bpid=$!
sleep 1
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
