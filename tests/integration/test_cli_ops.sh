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
# shellcheck source=../support/shtest.sh
. "$(dirname "${BASH_SOURCE[0]}")/../support/shtest.sh"
shtest_start
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
    has "... and its hint names the bound port, not :0" "$work/serve.out" \
        "try: siptls ping tls:127.0.0.1:$port "
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
# a key log that cannot be written: refused at start (it used to show only
# at the first TLS 1.2 handshake)
timeout 20 "$bin" serve --listen tls:127.0.0.1:0 --keylog "$work/no-such-dir/k.log" > "$work/keylog.out" 2>&1
check "serve --keylog in a folder that does not exist is refused" 1 $?
has "... naming the file and why" "$work/keylog.out" "no-such-dir/k.log': cannot open for writing: No such file"

# ---------------------------------------------------------------------------
# siptls config FILE loads what serve would load, short of binding
# (issue 8 §6): missing files, a key of another certificate, a syntax
# error, an unresolvable listen name -- each refused with a line that says
# where; a good file printed with the values the engine uses.
cat > "$work/missing.conf" <<EOF
listen = dtls:192.0.2.10
certificate = $work/nope.pem
private_key = $work/nope.key
EOF
timeout 20 "$bin" config "$work/missing.conf" > "$work/c.out" 2> "$work/c.err"
check "config: certificate and key files that do not exist" 1 $?
has "... names the file, the domain and the reason" "$work/c.err" \
    "missing.conf: domain 'default': cannot load certificate '$work/nope.pem': No such file or directory"
hasnt "... and prints no configuration" "$work/c.out" "listen"

cat > "$work/mismatch.conf" <<EOF
certificate = $pki/server.pem
private_key = $pki/alt.key
EOF
timeout 20 "$bin" config --config "$work/mismatch.conf" > "$work/c.out" 2> "$work/c.err"
check "config: a key that is not the certificate's" 1 $?
has "... says so" "$work/c.err" "domain 'default': private key '.*alt.key' does not belong to certificate"

cat > "$work/noca.conf" <<EOF
server_domain = sbc
listen = tls:127.0.0.1:0
certificate = $pki/server.pem
private_key = $pki/server.key
ca_list = [sbc]$work/nope-ca.pem
EOF
timeout 20 "$bin" config "$work/noca.conf" > "$work/c.out" 2> "$work/c.err"
check "config: a missing CA list of a declared domain" 1 $?
has "... names that domain" "$work/c.err" "noca.conf: domain 'sbc': cannot load CA list '$work/nope-ca.pem'"

printf 'tls_port = 5061\ntls_port = 70000\n' > "$work/syntax.conf"
timeout 20 "$bin" config "$work/syntax.conf" > "$work/c.out" 2> "$work/c.err"
check "config: a value out of range" 1 $?
has "... as file:line: key: reason" "$work/c.err" "syntax.conf:2: tls_port: .*70000"

cat > "$work/noname.conf" <<EOF
certificate = $pki/server.pem
private_key = $pki/server.key
listen = tls:no-such-host.invalid
EOF
timeout 30 "$bin" config "$work/noname.conf" > "$work/c.out" 2> "$work/c.err"
check "config: a listen name that does not resolve" 1 $?
has "... with the port and the resolver's message" "$work/c.err" \
    "noname.conf: listen 'tls:no-such-host.invalid:5061': cannot resolve 'no-such-host.invalid': [A-Za-z]"

cat > "$work/good.conf" <<EOF
tls_port = 5062
listen = dtls:192.0.2.10
listen = tls:127.0.0.1
certificate = $pki/server.pem
private_key = $pki/server.key
ca_list = $pki/ca.pem
server_domain = wild
match_sip_domain = [wild]*.example.org
EOF
timeout 20 "$bin" config "$work/good.conf" > "$work/c.out" 2> "$work/c.err"
check "config: a good file" 0 $?
has "... says what was checked" "$work/c.err" "good.conf: OK: certificates, keys, CAs and CRLs load"
has "... prints a DTLS listen URI with its port" "$work/c.out" '^listen = "dtls:192.0.2.10:5061"'
has "... prints a TLS listen URI with tls_port" "$work/c.out" '^listen = "tls:127.0.0.1:5062"'
grep -F "ca_list = \"[server:wild]$pki/ca.pem\"  # inherited from [server:default]" "$work/c.out" > /dev/null \
    && ok "... prints inherited domain values" || bad "... prints inherited domain values: $(cat "$work/c.out")"
cp "$work/c.out" "$work/effective.conf"
timeout 20 "$bin" config "$work/effective.conf" > "$work/c2.out" 2> "$work/c2.err"
check "config: the printed configuration loads and checks again" 0 $?
# the same values (the "# inherited" / "# default port" notes are gone:
# the values are now written in the file)
sed 's/  # .*$//' "$work/c.out" > "$work/c.vals"
sed 's/  # .*$//' "$work/c2.out" > "$work/c2.vals"
if cmp -s "$work/c.vals" "$work/c2.vals"; then ok "... with the same values"; else bad "... with the same values: $(diff "$work/c.vals" "$work/c2.vals")"; fi

# listeners without a server certificate: serve would use its development
# certificate, so this is a warning, not an error
printf 'listen = tls:127.0.0.1:0\n' > "$work/devcert.conf"
timeout 20 "$bin" config "$work/devcert.conf" > "$work/c.out" 2> "$work/c.err"
check "config: listeners without a certificate (serve's development certificate)" 0 $?
has "... is a warning saying what serve would do" "$work/c.err" \
    "devcert.conf: warning: listeners but no certificate in the default server domain: siptls serve would use an in-memory self-signed"
hasnt "... and the printed configuration has no development certificate in it" "$work/c.out" "/proc/self/fd"

# ---------------------------------------------------------------------------
# serve: a listen name that does not resolve gets the resolver's message,
# not "cannot resolve host (Success)"
timeout 30 "$bin" serve --listen tls:no-such-host.invalid:5061 --cert "$pki/server.pem" \
    --key "$pki/server.key" > "$work/r.out" 2>&1
check "serve: an unresolvable listen name fails" 1 $?
has "... with the resolver's message" "$work/r.out" \
    "listen 'tls:no-such-host.invalid:5061': cannot resolve 'no-such-host.invalid': [A-Za-z]"
hasnt "... not errno's" "$work/r.out" "Success"

# ---------------------------------------------------------------------------
# ping to a server that requires a client certificate: say that the server
# refused the handshake and, where its alert says so, why -- never
# "connected ... verified" then "TLS error"
printf 'tls_method = [client:default]TLSv1_2\n' > "$work/tls12.conf"
if start_serve --listen tls:127.0.0.1:0 --cert "$pki/server.pem" --key "$pki/server.key" \
    --ca "$pki/ca.pem" --require-cert; then
    timeout 20 "$bin" ping "tls:127.0.0.1:$port" --ca "$pki/ca.pem" > "$work/p.out" 2> "$work/p.err"
    check "ping without a certificate to a server requiring one (TLS 1.3)" 4 $?
    has "... the server refused, with its alert and what it means" "$work/p.err" \
        "the server refused the handshake: alert certificate_required \(116\): it requires a client certificate"
    hasnt "... no 'connected' line" "$work/p.out" "connected to"
    hasnt "... no 'TLS error'" "$work/p.err" "TLS error"

    timeout 20 "$bin" ping "tls:127.0.0.1:$port" --ca "$pki/ca.pem" -c "$work/tls12.conf" \
        > "$work/p.out" 2> "$work/p.err"
    check "ping without a certificate to a server requiring one (TLS 1.2)" 4 $?
    # wolfSSL 5.5.4 (SIPTLS_WOLFSSL=system) closes without an alert, 5.7.2
    # (bundled) sends handshake_failure (RFC 5246 §7.4.6)
    has "... the server refused or closed, said as such" "$work/p.err" \
        "(the server closed the connection during the handshake, without an alert|the server refused the handshake: alert handshake_failure \(40\) \(we sent no client certificate)"
    hasnt "... not 'socket I/O error'" "$work/p.err" "socket I/O error"

    timeout 20 "$bin" ping "tls:127.0.0.1:$port" --ca "$pki/ca.pem" --cert "$pki/rogue-client.pem" \
        --key "$pki/rogue-client.key" > "$work/p.out" 2> "$work/p.err"
    check "ping with a certificate the server does not trust" 4 $?
    has "... the server refused our certificate, with its alert" "$work/p.err" \
        "the server refused the handshake: alert [a-z_]+ \([0-9]+\): it did not accept our client certificate"

    timeout 20 "$bin" ping "tls:127.0.0.1:$port" --ca "$pki/ca.pem" --cert "$pki/client.pem" \
        --key "$pki/client.key" > "$work/p.out" 2> "$work/p.err"
    check "ping with a good certificate is served" 0 $?
    has "... and prints the connection once answered" "$work/p.out" "^connected to .* verified"
    has "... and the answer" "$work/p.out" "SIP/2.0 200 OK"
fi
stop_serve

echo "test_cli_ops: $passes passed, $fails failed"
[ "$fails" -eq 0 ]
