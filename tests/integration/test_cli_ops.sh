#!/usr/bin/env bash
# Operator messages of the CLI (issue 8 §6): what `siptls serve`, `siptls
# config` and `siptls ping` say when something is wrong, and that it is true.
# Args: SOURCE_DIR BUILD_DIR. Every step is bounded by `timeout`; only the
# serve processes started here are stopped, by their pids.
set -u
src=$1 build=$2
bin=$build/siptls
pki=$build/pki
[ -x "$bin" ] || { echo "no siptls binary"; exit 77; }
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
check() { # name expected-exit actual-exit
    if [ "$2" = "$3" ]; then ok "$1"; else bad "$1 (exit $3, want $2)"; fi
}
has() { # name file pattern (grep -E)
    if grep -Eq -- "$3" "$2"; then ok "$1"; else bad "$1: no /$3/ in: $(cat "$2")"; fi
}
hasnt() { # name file pattern
    if grep -Eq -- "$3" "$2"; then bad "$1: /$3/ in: $(cat "$2")"; else ok "$1"; fi
}

# Start serve with the given arguments; sets serve_pid and port (of the
# first listener). The ready line is waited for, bounded (10 s).
start_serve() {
    "$bin" serve "$@" > "$work/serve.out" 2> "$work/serve.err" &
    serve_pid=$!
    port=
    for _ in $(seq 1 200); do
        port=$(sed -n 's/.*ready on .* port \([0-9]*\).*/\1/p' "$work/serve.out" | head -n1)
        [ -n "$port" ] && return 0
        kill -0 "$serve_pid" 2>/dev/null || break
        sleep 0.05
    done
    echo "serve did not start: $(cat "$work/serve.err")"
    return 1
}
stop_serve() {
    [ -n "$serve_pid" ] || return 0
    kill -TERM "$serve_pid" 2>/dev/null
    wait "$serve_pid" 2>/dev/null
    serve_pid=
}

# ---------------------------------------------------------------------------
# serve --cert without --key: one PEM holding the chain and the key
# (docs/security.md "Certificates and keys").
cat "$pki/server.pem" "$pki/server.key" > "$work/combined.pem"
if start_serve --listen tls:127.0.0.1:0 --cert "$work/combined.pem"; then
    ok "serve --cert with the key in the same file starts"
    timeout 20 "$bin" ping "tls:127.0.0.1:$port" --ca "$pki/ca.pem" > "$work/p.out" 2>&1
    check "ping a server whose key sits in its certificate file" 0 $?
    has "... and it presents that certificate" "$work/p.out" "CN=localhost"
else
    bad "serve --cert with the key in the same file starts"
fi
stop_serve
# ... and the same for a client certificate (ping --cert alone)
cat "$pki/client.pem" "$pki/client.key" > "$work/client-combined.pem"
if start_serve --listen tls:127.0.0.1:0 --cert "$pki/server.pem" --key "$pki/server.key" \
    --ca "$pki/ca.pem" --require-cert; then
    timeout 20 "$bin" ping "tls:127.0.0.1:$port" --ca "$pki/ca.pem" --cert "$work/client-combined.pem" \
        > "$work/p.out" 2>&1
    check "ping --cert with the key in the same file, to a server requiring a certificate" 0 $?
fi
stop_serve
# a certificate file without a key, and no --key: refused, saying why
timeout 20 "$bin" serve --listen tls:127.0.0.1:0 --cert "$pki/server.pem" > "$work/nokey.out" 2>&1
check "serve --cert FILE without a key in FILE is refused" 1 $?
has "... naming the missing key" "$work/nokey.out" "holds no usable private key"
timeout 20 "$bin" serve --listen tls:127.0.0.1:0 --key "$pki/server.key" > "$work/keyonly.out" 2>&1
check "serve --key without --cert is a usage error" 2 $?
has "... saying so" "$work/keyonly.out" "--key needs --cert"

echo "test_cli_ops: $passes passed, $fails failed"
[ "$fails" -eq 0 ]
