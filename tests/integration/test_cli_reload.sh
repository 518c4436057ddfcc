#!/usr/bin/env bash
# `siptls serve` reads its configuration file again on SIGHUP and reloads
# the TLS domains, trusted_domain entries, certificates and CAs of every
# worker; a flow open across the reload goes on; a new flow gets the new
# certificate and trust; a file that does not load is reported and the
# configuration in use stays. Two workers, TLS and DTLS listeners, the test
# PKI. Args: SOURCE_DIR BUILD_DIR. Every wait is for a state (a log line, a
# banner, an answer), bounded in time; only the processes started here are
# stopped, by their pids.
set -u
src=$1 build=$2
bin=$build/siptls
pki=$build/pki
# shellcheck source=../support/shtest.sh
. "$src/tests/support/shtest.sh"
[ -x "$bin" ] || { echo "FAIL no siptls binary"; exit 1; }
work=$(mktemp -d)
serve_pid= long_pid=
cleanup() {
    [ -n "$long_pid" ] && kill "$long_pid" 2>/dev/null && wait "$long_pid" 2>/dev/null
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
# count_lines PATTERN FILE
count_lines() { grep -ac -- "$1" "$2" 2>/dev/null || true; }
# wait_count PATTERN FILE N: until at least N lines match (20 s)
wait_count() {
    local end=$((SECONDS + 20))
    while (($(count_lines "$1" "$2") < $3)); do
        alive "$serve_pid" || return 1
        ((SECONDS < end)) || return 1
        sleep 0.05
    done
}

conf=$work/siptls.conf
write_conf() { # cert-name trusted-domain(or "")
    {
        echo "listen = tls:127.0.0.1:0"
        echo "listen = dtls:127.0.0.1:0"
        echo "certificate = $pki/$1.pem"
        echo "private_key = $pki/$1.key"
        echo "ca_list = [server:default]$pki/ca.pem"
        echo "verify_cert = [server:default]1"
        [ -n "$2" ] && echo "trusted_domain = $2"
    } > "$conf.new"
    mv "$conf.new" "$conf"
}
write_conf server ""

"$bin" serve -c "$conf" --workers 2 -v > "$work/serve.out" 2> "$work/serve.err" &
serve_pid=$!
tport=$(serve_port "$work/serve.out" tls "$serve_pid") || { echo "FAIL serve did not start: $(cat "$work/serve.err")"; exit 1; }
dport=$(serve_port "$work/serve.out" dtls "$serve_pid") || { echo "FAIL no dtls listener"; exit 1; }

ping_as_client() { # scheme port extra...
    local scheme=$1 p=$2
    shift 2
    timeout 20 "$bin" ping "$scheme:127.0.0.1:$p" --cert "$pki/client.pem" --key "$pki/client.key" "$@"
}

# before: CN=localhost, the client untrusted
out=$(ping_as_client tls "$tport" --ca "$pki/ca.pem" 2>&1); rc=$?
check "ping before the reload" 0 $rc
echo "$out" | grep -q "peer: .*CN=localhost" && ok "old certificate before the reload" || bad "peer before: $out"
wait_match "flow .* up: tls .*, untrusted" "$work/serve.err" 20 "$serve_pid" && ok "client untrusted before" ||
    bad "no untrusted flow line: $(tail -n3 "$work/serve.err")"

# a flow that stays open across the reload: 30 requests 0.2 s apart on one
# TLS connection; it must get every answer
ping_as_client tls "$tport" --ca "$pki/ca.pem" --count 30 --interval 0.2 > "$work/long.out" 2>&1 &
long_pid=$!
wait_match "200 OK" "$work/long.out" 20 "$long_pid" || bad "long ping did not start: $(cat "$work/long.out")"

# the reload: another certificate (alt.example.test), the client trusted
write_conf alt client.example.test
kill -HUP "$serve_pid"
wait_count "configuration reloaded: 1 server and 1 client TLS domains, 1 trusted" "$work/serve.err" 2 &&
    ok "both workers reloaded" || bad "reload not logged twice: $(grep -a reload "$work/serve.err")"

# the same listen lines (port 0) are not a change, in any worker
if grep -aq "differs in the new configuration" "$work/serve.err"; then
    bad "unchanged listen lines reported as changed: $(grep -a differs "$work/serve.err" | head -n2)"
else
    ok "no worker reports the unchanged listen lines"
fi
out=$(ping_as_client tls "$tport" --insecure 2>&1); rc=$?
check "ping after the reload" 0 $rc
echo "$out" | grep -q "peer: .*CN=alt.example.test" && ok "new certificate after the reload" ||
    bad "peer after: $out"
wait_match "flow .* up: tls .*TRUSTED domain client.example.test" "$work/serve.err" 20 "$serve_pid" &&
    ok "client trusted after the reload" || bad "no trusted flow line: $(tail -n3 "$work/serve.err")"
out=$(ping_as_client dtls "$dport" --insecure 2>&1); rc=$?
check "dtls ping after the reload" 0 $rc
echo "$out" | grep -q "peer: .*CN=alt.example.test" && ok "dtls: new certificate" || bad "dtls peer after: $out"

wait "$long_pid"; rc=$?
long_pid=
check "the flow open across the reload got all its answers" 0 $rc
n=$(count_lines "200 OK" "$work/long.out")
[ "$n" = 30 ] && ok "30 answers on the old flow" || bad "$n answers on the old flow: $(tail -n3 "$work/long.out")"
grep -q "peer: .*CN=localhost" "$work/long.out" && ok "the old flow kept its certificate" || bad "long: $(head -n1 "$work/long.out")"

# a file with a syntax error: reported, nothing changes
printf 'certificate = %s/server.pem\nno equals sign here\n' "$pki" > "$conf"
refused=$(count_lines "reload refused" "$work/serve.err")
kill -HUP "$serve_pid"
wait_count "reload refused" "$work/serve.err" $((refused + 1)) && ok "a bad file is refused" ||
    bad "no refusal logged: $(tail -n3 "$work/serve.err")"
grep -a "reload refused" "$work/serve.err" | tail -n1 | grep -q "siptls.conf:2" && ok "the refusal names the line" ||
    bad "refusal: $(grep -a "reload refused" "$work/serve.err" | tail -n1)"

# a file that parses but whose certificate does not load: refused whole
write_conf server client.example.test
sed -i "s|^certificate = .*|certificate = $work/no-such.pem|" "$conf"
refused=$(count_lines "reload refused" "$work/serve.err")
kill -HUP "$serve_pid"
wait_count "reload refused" "$work/serve.err" $((refused + 1)) && ok "a certificate that does not load is refused" ||
    bad "no refusal: $(tail -n3 "$work/serve.err")"
grep -aq "no-such.pem" "$work/serve.err" && ok "the refusal names the file" || bad "file not named"
out=$(ping_as_client tls "$tport" --insecure 2>&1); rc=$?
check "ping after the refused reloads" 0 $rc
echo "$out" | grep -q "peer: .*CN=alt.example.test" && ok "the configuration in use stayed" || bad "peer: $out"
n=$(count_lines "configuration reloaded" "$work/serve.err")
[ "$n" = 2 ] && ok "no worker reloaded the bad files" || bad "$n reload lines"

kill -USR1 "$serve_pid"
wait_count "stats: flows open" "$work/serve.err" 2 || bad "no stats"
grep -a "stats: " "$work/serve.err" | grep -q "reloads 1$" && ok "reloads counted" || bad "stats: $(grep -a 'stats: ' "$work/serve.err")"

kill -TERM "$serve_pid"
wait "$serve_pid"; rc=$?
serve_pid=
check "serve exits 0" 0 $rc
echo "$passes checks passed, $fails failed"
[ "$fails" -eq 0 ]
