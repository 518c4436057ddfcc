#!/usr/bin/env bash
# A second `siptls serve` started by mistake on a port a running one holds
# must fail at once with "address already in use" naming the URI, and a
# non-zero exit; the first one keeps serving. The same with --workers on
# both sides (the workers share their ports among themselves only).
# Args: SOURCE_DIR BUILD_DIR. Every step is bounded; only processes started
# here are stopped, by their pids.
set -u
build=$2
bin=$build/siptls
pki=$build/pki
[ -x "$bin" ] || { echo "no siptls binary"; exit 1; }
work=$(mktemp -d)
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT
fails=0 passes=0
ok() { passes=$((passes + 1)); echo "ok   $1"; }
bad() { fails=$((fails + 1)); echo "FAIL $1"; }

# start NAME ARGS...: serve on ephemeral ports; sets tls_port and dtls_port
# from its "ready on" lines (waits for them, up to 20 s).
start() {
    local name=$1
    shift
    "$bin" serve --cert "$pki/server.pem" --key "$pki/server.key" "$@" \
        > "$work/$name.out" 2> "$work/$name.err" &
    pids+=($!)
    for _ in $(seq 1 400); do
        tls_port=$(sed -n 's/.*ready on tls:.* port \([0-9]*\).*/\1/p' "$work/$name.out" | head -n1)
        dtls_port=$(sed -n 's/.*ready on dtls:.* port \([0-9]*\).*/\1/p' "$work/$name.out" | head -n1)
        [ -n "$tls_port" ] && [ -n "$dtls_port" ] && return 0
        sleep 0.05
    done
    echo "serve $name did not start"; cat "$work/$name.err"; exit 1
}

# second NAME ARGS...: must exit non-zero by itself within 20 s, saying the
# address is in use and naming the URI.
second() {
    local name=$1 uri=$2 rc
    shift 2
    timeout 20 "$bin" serve --cert "$pki/server.pem" --key "$pki/server.key" "$@" \
        > "$work/$name.out" 2> "$work/$name.err"
    rc=$?
    if [ "$rc" -eq 0 ] || [ "$rc" -eq 124 ]; then
        bad "$name: second instance started (exit $rc)"
    elif grep -qi "already in use" "$work/$name.err" && grep -qF "$uri" "$work/$name.err"; then
        ok "$name: refused, exit $rc: $(grep -i 'already in use' "$work/$name.err" | head -n1)"
    else
        bad "$name: exit $rc without 'address already in use' for $uri: $(cat "$work/$name.err")"
    fi
}

pings() { # what: each transport answers a ping
    timeout 20 "$bin" ping "tls:127.0.0.1:$tls_port" --ca "$pki/ca.pem" > /dev/null 2>&1 \
        && ok "$1: tls ping answered" || bad "$1: tls ping not answered"
    timeout 20 "$bin" ping "dtls:127.0.0.1:$dtls_port" --ca "$pki/ca.pem" > /dev/null 2>&1 \
        && ok "$1: dtls ping answered" || bad "$1: dtls ping not answered"
}

start first --listen tls:127.0.0.1:0 --listen dtls:127.0.0.1:0
pings "first"
second "tls twice" "tls:127.0.0.1:$tls_port" --listen "tls:127.0.0.1:$tls_port"
second "dtls twice" "dtls:127.0.0.1:$dtls_port" --listen "dtls:127.0.0.1:$dtls_port"
second "workers on a single's port" "tls:127.0.0.1:$tls_port" --workers 2 --listen "tls:127.0.0.1:$tls_port"
pings "first, after the refused ones"

start multi --workers 2 --listen tls:127.0.0.1:0 --listen dtls:127.0.0.1:0
second "single on the workers' tls port" "tls:127.0.0.1:$tls_port" --listen "tls:127.0.0.1:$tls_port"
second "workers on the workers' dtls port" "dtls:127.0.0.1:$dtls_port" --workers 2 \
    --listen "dtls:127.0.0.1:$dtls_port"

echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
