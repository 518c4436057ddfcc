#!/usr/bin/env bash
# `siptls serve --workers 2` stopped with SIGTERM closes the flows of every
# worker with a close_notify, worker 0's too (it runs the signal handler on
# its own loop, which used to end before its engine had closed anything:
# its peers saw no goodbye and its last stats line "flows open N").
# Args: SOURCE_DIR BUILD_DIR. Eight held-open TLS pings spread over the two
# workers by SO_REUSEPORT; every wait is for a state and bounded; only the
# processes started here are stopped, by their pids.
set -u
src=$1 build=$2
bin=$build/siptls
pki=$build/pki
# shellcheck source=../support/shtest.sh
. "$src/tests/support/shtest.sh"
[ -x "$bin" ] || { echo "FAIL no siptls binary"; exit 1; }
shtest_start
pings=()
stop_pings() {
    local p
    for p in "${pings[@]}"; do kill "$p" 2> /dev/null && wait "$p" 2> /dev/null; done
    shtest_cleanup
}
trap stop_pings EXIT

"$bin" serve --listen tls:127.0.0.1:0 --listen dtls:127.0.0.1:0 --cert "$pki/server.pem" \
    --key "$pki/server.key" --workers 2 > "$work/serve.out" 2> "$work/serve.err" &
serve_pid=$!
tport=$(serve_port "$work/serve.out" tls "$serve_pid") || { echo "FAIL serve did not start: $(cat "$work/serve.err")"; exit 1; }
dport=$(serve_port "$work/serve.out" dtls "$serve_pid") || { echo "FAIL no dtls listener"; exit 1; }

for i in 1 2 3 4 5 6 7 8; do
    scheme=tls port=$tport
    ((i > 6)) && scheme=dtls port=$dport
    timeout 60 "$bin" ping "$scheme:127.0.0.1:$port" --ca "$pki/ca.pem" --count 200 --interval 0.2 \
        > "$work/ping$i.out" 2> "$work/ping$i.err" &
    pings+=($!)
done
for i in 1 2 3 4 5 6 7 8; do
    wait_match "200 OK" "$work/ping$i.out" 20 "${pings[$((i - 1))]}" || bad "ping $i did not start: $(cat "$work/ping$i.err")"
done

kill -TERM "$serve_pid"
wait "$serve_pid"; rc=$?
serve_pid=
[ "$rc" = 0 ] && ok "serve exits 0" || bad "serve exit $rc"
for i in 1 2 3 4 5 6 7 8; do
    wait "${pings[$((i - 1))]}"
    if grep -q "closed by peer" "$work/ping$i.err"; then
        ok "ping $i: closed by peer (close_notify)"
    else
        bad "ping $i: $(cat "$work/ping$i.err")"
    fi
done
pings=()
# the last stats line of each worker: nothing left open
last=$(grep -a "stats: flows open" "$work/serve.err" | tail -n 2)
if [ -n "$last" ] && ! grep -q "flows open [1-9]" <<< "$last"; then
    ok "every worker closed its flows"
else
    bad "flows left open at exit: $last"
fi
echo "test_cli_workers_stop: $passes passed, $fails failed"
[ "$fails" -eq 0 ]
