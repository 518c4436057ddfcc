#!/usr/bin/env bash
# `siptls serve` at its open-file limit: connections it cannot take are shed
# and counted (stats "resources N"), logged a few times rather than once
# each, and the server serves again once descriptors are free.
# Args: SOURCE_DIR BUILD_DIR. Every step is bounded; only the serve process
# started here is stopped, by its pid.
set -u
build=$2
bin=$build/siptls
pki=$build/pki
[ -x "$bin" ] || { echo "no siptls binary"; exit 1; }
# shellcheck source=../support/shtest.sh
. "$(dirname "${BASH_SOURCE[0]}")/../support/shtest.sh"
shtest_start
wait_for() { # pattern file: up to 20 s
    for _ in $(seq 1 400); do grep -q "$1" "$2" && return 0; sleep 0.05; done
    return 1
}

# 64 descriptors: a dozen for the server itself, room for ~50 connections
(ulimit -n 64 && exec "$bin" serve --listen tls:127.0.0.1:0 --cert "$pki/server.pem" \
    --key "$pki/server.key" --stats-interval 0) > "$work/serve.out" 2> "$work/serve.err" &
serve_pid=$!
wait_for "ready on tls:" "$work/serve.out" || { echo "serve did not start"; cat "$work/serve.err"; exit 1; }
port=$(sed -n 's/.*ready on tls:.* port \([0-9]*\).*/\1/p' "$work/serve.out" | head -n1)

# 150 connections held open: about 100 of them cannot be taken
timeout 60 "$bin" bench "tls:127.0.0.1:$port" --ca "$pki/ca.pem" --mode idle -C 150 -w 16 \
    --duration 1 > "$work/bench.out" 2>&1
kill -0 "$serve_pid" 2>/dev/null && ok "serve survives the open-file limit" || bad "serve died"

kill -USR1 "$serve_pid"
wait_for "stats: flows open" "$work/serve.err" || bad "no stats line on SIGUSR1"
shed=$(sed -n 's/.* resources \([0-9]*\);.*/\1/p' "$work/serve.err" | tail -n1)
if [ -n "$shed" ] && [ "$shed" -gt 0 ]; then
    ok "stats count the shed connections (resources $shed)"
else
    bad "no 'resources N>0' in the stats line: $(grep 'stats:' "$work/serve.err" | tail -n1)"
fi
lines=$(grep -c "cannot accept\|cannot create its TLS session" "$work/serve.err")
if [ "$lines" -ge 1 ] && [ "$lines" -le 4 ]; then
    ok "logged, rate-limited ($lines lines for $shed connections)"
else
    bad "$lines log lines for $shed shed connections: $(head -n 5 "$work/serve.err")"
fi

# once the bench has closed its connections the server answers again
served=0
for _ in $(seq 1 20); do
    if timeout 10 "$bin" ping "tls:127.0.0.1:$port" --ca "$pki/ca.pem" > /dev/null 2>&1; then
        served=1
        break
    fi
    sleep 0.25
done
[ "$served" = 1 ] && ok "serves again after the burst" || bad "no answer after the burst"

echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
