#!/usr/bin/env bash
# `siptls serve --metrics ADDR:PORT`: the counters of every worker, added
# up, in the Prometheus text exposition format (0.0.4) over plain HTTP,
# scraped with a real client (curl). Checks the format line by line (HELP
# and TYPE once per family and before its samples, every family in one
# block, metric and label names, label values and their escapes, numeric
# values, counters named *_total, no series twice), that the values move
# with traffic on TLS and DTLS across two workers (per engine, listener and
# TLS domain), and the HTTP edges: 404, 405, HEAD, a query string, a
# request too large (431), a client that sends nothing (others are still
# served), and a reload counted. Args: SOURCE_DIR BUILD_DIR. Every wait is
# for a state and bounded; only the processes started here are stopped, by
# their pids.
set -u
src=$1 build=$2
bin=$build/siptls
pki=$build/pki
# shellcheck source=../support/shtest.sh
. "$src/tests/support/shtest.sh"
[ -x "$bin" ] || { echo "FAIL no siptls binary"; exit 1; }
need curl
shtest_start

# check_format FILE: the text exposition format, strictly. Prints the
# problems (nothing when the text is right).
check_format() {
    awk '
    function fail(msg) { print "line " NR ": " msg ": " $0; bad = 1 }
    function family_of(name) { return name }
    # parse the label set s ("{a=\"x\",b=\"y\"}" without braces); 0 on error
    function labels_ok(s,    n, name, c, seen, i) {
        delete seen
        while (s != "") {
            if (!match(s, /^[a-zA-Z_][a-zA-Z0-9_]*="/)) { return 0 }
            name = substr(s, 1, RLENGTH - 2)
            if (name in seen) { return 0 }
            seen[name] = 1
            s = substr(s, RLENGTH + 1)
            # the value: up to an unescaped quote; escapes \\ \" \n only
            n = length(s)
            for (i = 1; i <= n; i++) {
                c = substr(s, i, 1)
                if (c == "\\") {
                    c = substr(s, i + 1, 1)
                    if (c != "\\" && c != "\"" && c != "n") { return 0 }
                    i++
                } else if (c == "\"") {
                    break
                } else if (c == "\n") {
                    return 0
                }
            }
            if (i > n) { return 0 }
            s = substr(s, i + 1)
            if (s == "") { break }
            if (substr(s, 1, 1) != ",") { return 0 }
            s = substr(s, 2)
        }
        return 1
    }
    /^# HELP / {
        name = $3
        if (name !~ /^[a-zA-Z_:][a-zA-Z0-9_:]*$/) { fail("bad metric name in HELP") }
        if (name in help) { fail("second HELP for " name) }
        if (name in done) { fail("family " name " is split") }
        if (cur != "" && cur != name) { done[cur] = 1 }
        cur = name; help[name] = 1
        if (NF < 4) { fail("HELP without text") }
        next
    }
    /^# TYPE / {
        name = $3
        if (name in type) { fail("second TYPE for " name) }
        if (name in sampled) { fail("TYPE after samples of " name) }
        if (name in done) { fail("family " name " is split") }
        if (cur != "" && cur != name) { done[cur] = 1 }
        cur = name
        if (NF != 4 || $4 !~ /^(counter|gauge|histogram|summary|untyped)$/) { fail("bad TYPE") }
        type[name] = $4
        if ($4 == "counter" && name !~ /_total$/) { fail("counter not named *_total") }
        if ($4 != "counter" && name ~ /_total$/) { fail("*_total that is no counter") }
        next
    }
    /^#/ { fail("comment that is neither HELP nor TYPE"); next }
    /^$/ { fail("empty line"); next }
    {
        if (!match($0, /^[a-zA-Z_:][a-zA-Z0-9_:]*/)) { fail("no metric name"); next }
        name = substr($0, 1, RLENGTH)
        rest = substr($0, RLENGTH + 1)
        lab = ""
        if (substr(rest, 1, 1) == "{") {
            end = index(rest, "} ")
            if (end == 0) { fail("unterminated labels"); next }
            lab = substr(rest, 2, end - 2)
            rest = substr(rest, end + 1)
            if (!labels_ok(lab)) { fail("bad labels") }
        }
        if (rest !~ /^ -?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$/) { fail("bad value") }
        if (!(name in type)) { fail("sample before its TYPE") }
        if (name != cur) { fail("sample outside its family block") }
        if ((name "{" lab "}") in series) { fail("series twice") }
        series[name "{" lab "}"] = 1
        sampled[name] = 1
        samples++
    }
    END {
        for (n in type) { if (!(n in help)) { print "no HELP for " n; bad = 1 } }
        for (n in type) { if (!(n in sampled)) { print "family without samples: " n; bad = 1 } }
        if (samples < 50) { print "only " samples " samples"; bad = 1 }
        exit bad
    }' "$1"
}

# value FILE SERIES: the value of one series (the whole name{labels}), or
# "none"
value() {
    awk -v s="$2" '{ v = $NF; $NF = ""; sub(/ $/, ""); if ($0 == s) { print v; found = 1; exit } }
        END { if (!found) print "none" }' "$1"
}

conf=$work/siptls.conf
cat > "$conf" <<EOF
listen = tls:127.0.0.1:0
listen = dtls:127.0.0.1:0
certificate = $pki/server.pem
private_key = $pki/server.key
server_domain = sbc
match_sip_domain = [sbc]localhost
certificate = [sbc]$pki/server.pem
private_key = [sbc]$pki/server.key
EOF

# a bad --metrics is a usage error (exit 2) before anything listens: no
# port that wraps (99999 used to serve on 34463), no name, no junk
for bad_addr in 127.0.0.1:99999 127.0.0.1: 127.0.0.1:0x localhost:0 "[::1]:65536" 127.0.0.1; do
    timeout 10 "$bin" serve -c "$conf" --metrics "$bad_addr" > "$work/bad.out" 2> "$work/bad.err"
    rc=$?
    if [ "$rc" = 2 ] && grep -q -- "--metrics" "$work/bad.err" && ! grep -q "listening on" "$work/bad.err"; then
        ok "--metrics $bad_addr refused (exit 2)"
    else
        bad "--metrics $bad_addr: exit $rc: $(cat "$work/bad.err")"
    fi
done

"$bin" serve -c "$conf" --workers 2 --metrics 127.0.0.1:0 > "$work/serve.out" 2> "$work/serve.err" &
serve_pid=$!
tport=$(serve_port "$work/serve.out" tls "$serve_pid") || { echo "FAIL serve did not start: $(cat "$work/serve.err")"; exit 1; }
dport=$(serve_port "$work/serve.out" dtls "$serve_pid") || { echo "FAIL no dtls listener"; exit 1; }
wait_match "metrics on http://" "$work/serve.out" 20 "$serve_pid" || { echo "FAIL no metrics line"; exit 1; }
url=$(sed -n 's/^siptls serve: metrics on \(http:[^ ]*\)$/\1/p' "$work/serve.out")
base=${url%/metrics}
mport=${base##*:}
echo "metrics at $url"

scrape() { # OUTFILE: body into OUTFILE, headers into OUTFILE.h; prints the status
    curl -sS --max-time 10 -D "$1.h" -o "$1" -w '%{http_code}' "$url"
}

code=$(scrape "$work/m1")
[ "$code" = 200 ] && ok "GET /metrics: 200" || bad "GET /metrics: $code"
grep -qi '^Content-Type: text/plain; version=0.0.4; charset=utf-8' "$work/m1.h" && ok "content type 0.0.4" ||
    bad "content type: $(cat "$work/m1.h")"
grep -qi '^Connection: close' "$work/m1.h" && ok "Connection: close" || bad "no Connection: close"
check_format "$work/m1" > "$work/fmt1" && ok "exposition format" || bad "format: $(head -n5 "$work/fmt1")"
[ "$(value "$work/m1" siptls_engines)" = 2 ] && ok "two engines added up" || bad "engines: $(value "$work/m1" siptls_engines)"
for fam in siptls_messages_received_total siptls_listener_flows_open siptls_domain_handshakes_total \
    siptls_handshake_failures_total siptls_drops_total siptls_reloads_total siptls_start_time_seconds; do
    grep -q "^# TYPE $fam " "$work/m1" && ok "family $fam" || bad "no family $fam"
done

tl="listener=\"tls:127.0.0.1:$tport\",transport=\"tls\""
dl="listener=\"dtls:127.0.0.1:$dport\",transport=\"dtls\""
before_msgs=$(value "$work/m1" siptls_messages_received_total)
before_tls=$(value "$work/m1" "siptls_listener_flows_accepted_total{$tl}")
before_dtls=$(value "$work/m1" "siptls_listener_flows_accepted_total{$dl}")
[ "$before_tls" = 0 ] && [ "$before_dtls" = 0 ] && ok "listener series present at 0" ||
    bad "listener series: tls=$before_tls dtls=$before_dtls"

# traffic: 3 + 2 requests over TLS (the second by name: SNI localhost
# chooses the server domain sbc), 2 over DTLS
timeout 20 "$bin" ping "tls:127.0.0.1:$tport" --insecure -n 3 -i 0.05 > "$work/p1" 2>&1 || bad "tls ping: $(cat "$work/p1")"
timeout 20 "$bin" ping "tls:localhost:$tport" --insecure -n 2 -i 0.05 > "$work/p2" 2>&1 || bad "tls ping by name: $(cat "$work/p2")"
timeout 20 "$bin" ping "dtls:127.0.0.1:$dport" --insecure -n 2 -i 0.05 > "$work/p3" 2>&1 || bad "dtls ping: $(cat "$work/p3")"

code=$(scrape "$work/m2")
[ "$code" = 200 ] && ok "second scrape" || bad "second scrape: $code"
check_format "$work/m2" > "$work/fmt2" && ok "format after traffic" || bad "format: $(head -n5 "$work/fmt2")"
want() { # name series expected
    local got
    got=$(value "$work/m2" "$2")
    [ "$got" = "$3" ] && ok "$1 = $3" || bad "$1: $2 is $got, want $3"
}
want "messages received (both workers)" siptls_messages_received_total $((before_msgs + 7))
want "messages sent" siptls_messages_sent_total 7
want "handshakes" siptls_handshakes_total 3
want "tls listener accepted" "siptls_listener_flows_accepted_total{$tl}" 2
want "dtls listener accepted" "siptls_listener_flows_accepted_total{$dl}" 1
want "tls listener messages" "siptls_listener_messages_received_total{$tl}" 5
want "dtls listener messages" "siptls_listener_messages_received_total{$dl}" 2
want "default server domain handshakes" 'siptls_domain_handshakes_total{domain="default",role="server"}' 2
want "sbc server domain handshakes (SNI)" 'siptls_domain_handshakes_total{domain="sbc",role="server"}' 1
want "sbc messages" 'siptls_domain_messages_received_total{domain="sbc",role="server"}' 2
want "client domain untouched" 'siptls_domain_handshakes_total{domain="default",role="client"}' 0
bytes=$(value "$work/m2" siptls_received_bytes_total)
[ "$bytes" != none ] && [ "$bytes" -gt 1000 ] && ok "bytes received move ($bytes)" || bad "bytes: $bytes"

# every family is documented in the admin guide's metrics section, and
# every metric that section names exists
guide=$src/docs/admin-guide.md
awk '/^```/ { fence = !fence } !fence && /^#/ { on = ($0 == "#### Prometheus metrics") } on' "$guide" \
    > "$work/guide-metrics"
grep '^# TYPE ' "$work/m2" | awk '{ print $3 }' | sort > "$work/families"
# the metric table: its first three cells (engines, listener, domain)
grep '^| `siptls_' "$work/guide-metrics" | cut -d'|' -f2-4 | grep -o '`siptls_[a-z_]*`' | tr -d '`' |
    sort -u > "$work/documented"
undocumented=$(comm -23 "$work/families" "$work/documented" | tr '\n' ' ')
[ -z "$undocumented" ] && ok "every metric is in the admin guide" || bad "not in docs/admin-guide.md: $undocumented"
stale=$(comm -13 "$work/families" "$work/documented" | tr '\n' ' ')
[ -z "$stale" ] && ok "every metric the guide names exists" || bad "in the guide, not served: $stale"

# HTTP edges
c=$(curl -s -o /dev/null -w '%{http_code}' "$base/")
[ "$c" = 404 ] && ok "GET / is 404" || bad "GET /: $c"
c=$(curl -s -o /dev/null -w '%{http_code}' "$base/metricsx")
[ "$c" = 404 ] && ok "GET /metricsx is 404" || bad "GET /metricsx: $c"
c=$(curl -s -o /dev/null -w '%{http_code}' -X POST --data x "$url")
[ "$c" = 405 ] && ok "POST is 405" || bad "POST: $c"
c=$(curl -s -o "$work/q" -w '%{http_code}' "$url?name[]=x")
[ "$c" = 200 ] && [ -s "$work/q" ] && ok "a query string is ignored" || bad "query: $c"
curl -s -I "$url" > "$work/head.h"
grep -q '^HTTP/1.1 200' "$work/head.h" && grep -qi '^Content-Length: [1-9]' "$work/head.h" && ok "HEAD: 200 with a length" ||
    bad "HEAD: $(cat "$work/head.h")"
c=$(curl -s -o /dev/null -w '%{http_code}' -H "X-Big: $(head -c 9000 /dev/zero | tr '\0' a)" "$url")
[ "$c" = 431 ] && ok "a request too large is 431" || bad "large request: $c"
printf 'NOT HTTP AT ALL\r\n\r\n' > "$work/junk.req"
c=$(timeout 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$mport; cat '$work/junk.req' >&3; head -n1 <&3")
case $c in "HTTP/1.1 400"*) ok "junk is 400" ;; *) bad "junk: $c" ;; esac

# a client that connects and says nothing does not hold anyone up
exec {idle_fd}<>"/dev/tcp/127.0.0.1/$mport"
c=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$url")
[ "$c" = 200 ] && ok "served while another client says nothing" || bad "with an idle client: $c"
exec {idle_fd}>&-

# a reload is counted by every worker
kill -HUP "$serve_pid"
end=$((SECONDS + 20))
while (($(grep -ac "configuration reloaded" "$work/serve.err") < 2)) && ((SECONDS < end)); do sleep 0.05; done
scrape "$work/m3" > /dev/null
want3=$(value "$work/m3" siptls_reloads_total)
[ "$want3" = 2 ] && ok "reloads_total = 2 (two workers)" || bad "reloads_total: $want3"

# --metrics on a port that is taken: serve does not start
"$bin" serve -l tls:127.0.0.1:0 --metrics "127.0.0.1:$mport" > "$work/s2.out" 2> "$work/s2.err" &
pid2=$!
wait "$pid2"; rc=$?
[ "$rc" = 1 ] && grep -q -- "--metrics" "$work/s2.err" && ok "a taken metrics port stops serve (exit 1)" ||
    bad "taken port: exit $rc $(cat "$work/s2.err")"
timeout 10 "$bin" serve -l tls:127.0.0.1:0 --metrics 9100 > /dev/null 2> "$work/s3.err"
rc=$?
[ "$rc" = 2 ] && ok "--metrics without ADDR: is a usage error" || bad "--metrics 9100: exit $rc"

kill -TERM "$serve_pid"
wait "$serve_pid"; rc=$?
serve_pid=
[ "$rc" = 0 ] && ok "serve exits 0" || bad "serve exit $rc"
echo "$passes checks passed, $fails failed"
[ "$fails" -eq 0 ]
