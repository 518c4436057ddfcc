#!/usr/bin/env bash
# The client commands as docs/admin-guide.md "Command-line tool" describes
# them where they once did otherwise:
#  - `siptls ping -c FILE` / `siptls bench -c FILE` with the file serve
#    runs on (it has `listen` lines): the clients ignore them. They used to
#    bind them: "address already in use" (exit 4 / 1) while serve held the
#    port, "cannot load certificate" without a server certificate.
#  - `siptls bench` against a server that never completes a handshake
#    stops with "no connection came up" and exit status 1 (it exited 0 with
#    0 errors when the handshake timeout was longer than its 20 s connect
#    phase).
# Args: SOURCE_DIR BUILD_DIR. Every step is bounded by `timeout` or a
# bounded loop; only the serve process started here is stopped (and
# continued), by its pid.
set -u
build=$2
bin=$build/siptls
pki=$build/pki
[ -x "$bin" ] || { echo "no siptls binary"; exit 77; }
[ -f "$pki/ca.pem" ] || { echo "no test PKI in $pki"; exit 77; }
# shellcheck source=../support/shtest.sh
. "$(dirname "${BASH_SOURCE[0]}")/../support/shtest.sh"
shtest_start
check() { # name expected-exit actual-exit [file to show]
    if [ "$2" = "$3" ]; then ok "$1"; else bad "$1 (exit $3, want $2) ${4:+$(cat "$4")}"; fi
}

"$bin" serve --listen tls:127.0.0.1:0 --cert "$pki/server.pem" --key "$pki/server.key" -q \
    > "$work/serve.out" 2> "$work/serve.err" &
serve_pid=$!
port=
for _ in $(seq 1 200); do
    port=$(sed -n 's/.*ready on tls:.* port \([0-9]*\).*/\1/p' "$work/serve.out" | head -n1)
    [ -n "$port" ] && break
    kill -0 "$serve_pid" 2>/dev/null || break
    sleep 0.05
done
[ -n "$port" ] || { echo "serve did not start: $(cat "$work/serve.err")"; exit 1; }

# The file serve would run on: its listener (the port serve holds), its
# certificate, and a CA for the clients.
cat > "$work/site.conf" <<EOF
listen = tls:127.0.0.1:$port
listen = dtls:127.0.0.1:$port
certificate = [server:default]$pki/server.pem
private_key = [server:default]$pki/server.key
ca_list = [client:default]$pki/ca.pem
EOF
# The same without a server certificate.
grep -v '^certificate\|^private_key' "$work/site.conf" > "$work/nocert.conf"

for f in site nocert; do
    timeout 20 "$bin" ping "tls:localhost:$port" -c "$work/$f.conf" -t 5 \
        > "$work/ping.out" 2> "$work/ping.err"
    check "ping -c $f.conf (listen lines of serve's port) answers" 0 $? "$work/ping.err"
    grep -q "SIP/2.0 200 OK" "$work/ping.out" && ok "... with 200 OK" ||
        bad "... no 200 OK: $(cat "$work/ping.out" "$work/ping.err")"
    timeout 60 "$bin" bench "tls:localhost:$port" -c "$work/$f.conf" -n 20 \
        > "$work/bench.out" 2> "$work/bench.err"
    check "bench -c $f.conf runs" 0 $? "$work/bench.err"
    grep -q "requests    20 in" "$work/bench.out" && ok "... 20 requests measured" ||
        bad "... $(cat "$work/bench.out" "$work/bench.err")"
done

# A server that accepts TCP connections and never answers a handshake: the
# serve above, stopped (the kernel still completes the TCP handshakes).
# A handshake timeout longer than bench's 20 s connect phase leaves the
# connection opening when bench gives up.
printf 'tls_handshake_timeout = 60000\n' > "$work/slow.conf"
kill -STOP "$serve_pid"
timeout 60 "$bin" bench "tls:127.0.0.1:$port" -k -c "$work/slow.conf" -d 1 \
    > "$work/stall.out" 2> "$work/stall.err"
rc=$?
kill -CONT "$serve_pid"
check "bench: no connection came up is a failure (exit 1)" 1 $rc "$work/stall.out"
grep -q "no connection came up" "$work/stall.out" && ok "... and says so" ||
    bad "... $(cat "$work/stall.out")"
grep -Eq "errors +[1-9][0-9]*: timeout [1-9]" "$work/stall.out" &&
    ok "... the connection still in its handshake counts as a timeout error" ||
    bad "... errors line: $(grep errors "$work/stall.out")"

echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
