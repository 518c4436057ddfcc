#!/usr/bin/env bash
# A phone behind a NAT whose mapping changes, through a real Linux NAT: three
# network namespaces (client -> router -> server), the router masquerading
# the client to a random port of 40000-49999 (nftables). `siptls ping -n`
# keeps one DTLS session open and sends a request every 0.2 s; between
# answers the router forgets its mappings (conntrack -F), so the client's
# next datagram reaches the server from a new source port.
#
#   DTLS 1.3 with Connection ID (the default): every answer arrives, the
#     server logs one "peer moved" per rebinding, it accepted ONE flow and
#     made ONE handshake.
#   The same with `serve --workers 2` (two engines share the port; a
#     rebound client may land on either): every answer arrives, 6 moves,
#     one flow in all workers.
#   dtls_cid = 0: the records from the new port belong to no session; the
#     server drops them (bad records), no answer comes back after the first
#     rebinding, nothing moves (the behaviour before Connection IDs).
#
# Needs root (network namespaces), iproute2, nftables and conntrack, which
# scripts/test.sh installs. Args: SOURCE_DIR BUILD_DIR. Every step is
# bounded; only the processes and namespaces made here are removed.
set -u
build=$2
bin=$build/siptls
pki=$build/pki
# shellcheck source=../support/shtest.sh
. "$(dirname "${BASH_SOURCE[0]}")/../support/shtest.sh"
[ -x "$bin" ] || { echo "FAIL no siptls binary at $bin"; exit 1; }
need ip nft conntrack
shtest_start
tag=sn$$
cns=${tag}c rns=${tag}r sns=${tag}s
client_pid=
cleanup_all() {
    [ -n "$client_pid" ] && kill "$client_pid" 2> /dev/null && wait "$client_pid" 2> /dev/null
    shtest_cleanup
    for n in "$cns" "$rns" "$sns"; do ip netns del "$n" 2> /dev/null; done
}
trap cleanup_all EXIT

# client 10.99.0.2 -- 10.99.0.1 router 10.98.0.1 -- 10.98.0.2 server
for n in "$cns" "$rns" "$sns"; do
    ip netns add "$n" || { echo "FAIL ip netns add $n (root and network namespaces are needed)"; exit 1; }
    ip -n "$n" link set lo up
done
ip link add "${tag}a" netns "$cns" type veth peer name "${tag}b" netns "$rns"
ip link add "${tag}d" netns "$rns" type veth peer name "${tag}e" netns "$sns"
ip -n "$cns" addr add 10.99.0.2/24 dev "${tag}a"
ip -n "$cns" link set "${tag}a" up
ip -n "$cns" route add default via 10.99.0.1
ip -n "$rns" addr add 10.99.0.1/24 dev "${tag}b"
ip -n "$rns" link set "${tag}b" up
ip -n "$rns" addr add 10.98.0.1/24 dev "${tag}d"
ip -n "$rns" link set "${tag}d" up
ip -n "$sns" addr add 10.98.0.2/24 dev "${tag}e"
ip -n "$sns" link set "${tag}e" up
ip -n "$sns" route add default via 10.98.0.1
ip netns exec "$rns" sysctl -qw net.ipv4.ip_forward=1
ip netns exec "$rns" nft -f - << NFT || { echo "FAIL nft: the router's NAT"; exit 1; }
table ip nat {
    chain post {
        type nat hook postrouting priority 100;
        oifname "${tag}d" meta l4proto udp masquerade to :40000-49999 random
    }
}
NFT

# answers FILE: how many 200 OK lines ping printed so far
answers() { grep -c "SIP/2.0 200" "$1" 2> /dev/null; }
# wait_answers FILE N [SECONDS]: until ping printed N answers (bounded)
wait_answers() {
    local end=$((SECONDS + ${3:-10}))
    while (($(answers "$1") < $2)); do
        ((SECONDS < end)) || return 1
        alive "$client_pid" || return 1
        sleep 0.02
    done
}

# run NAME COUNT FLUSH_AFTER... [-- SERVE_ARGS]: serve in the server
# namespace, ping COUNT times from the client namespace, flush the NAT's
# mappings after each answer count in FLUSH_AFTER.
run() {
    local name=$1 count=$2
    shift 2
    local flush_after=()
    ping_rc=99 got=0 moved=0 stats=""
    while (($#)) && [ "$1" != -- ]; do flush_after+=("$1"); shift; done
    (($#)) && shift
    ip netns exec "$sns" "$bin" serve --listen dtls:10.98.0.2:0 -v \
        --cert "$pki/server.pem" --key "$pki/server.key" "$@" \
        > "$work/$name.serve.out" 2> "$work/$name.serve.err" &
    serve_pid=$!
    local port
    port=$(serve_port "$work/$name.serve.out" dtls "$serve_pid") || { bad "$name: serve did not start"; cat "$work/$name.serve.err"; return; }
    ip netns exec "$cns" timeout 60 "$bin" ping "dtls:10.98.0.2:$port" -k -n "$count" -i 0.2 -t 1 \
        > "$work/$name.ping" 2>&1 &
    client_pid=$!
    local k
    for k in "${flush_after[@]}"; do
        wait_answers "$work/$name.ping" "$k" || break
        ip netns exec "$rns" conntrack -F > /dev/null 2>&1
    done
    wait "$client_pid"
    ping_rc=$?
    client_pid=
    # serve prints its counters (one line per worker) when it stops
    kill "$serve_pid"
    wait "$serve_pid"
    serve_pid=
    got=$(answers "$work/$name.ping")
    moved=$(grep -c "peer moved from" "$work/$name.serve.err")
    stats=$(grep "stats: flows open" "$work/$name.serve.err" | tail -n1)
}

# 1. Connection ID (default): 3 rebindings, one session throughout. A
# siptls without Connection IDs (Debian's wolfSSL 5.5.4: DTLS 1.2 only, no
# CID; `siptls --version` says "DTLS connection ID: no") must behave as
# with dtls_cid = 0 below: its answers stop at the first rebinding.
run cid 16 4 8 12
if ! "$bin" --version | grep -q "DTLS connection ID: yes"; then
    [ "$ping_rc" -ne 0 ] && [ "$got" -eq 4 ] && [ "$moved" -eq 0 ] \
        && ok "no CID in this build: answers stop at the first rebinding (4 of 16), nothing moved" \
        || { bad "no CID in this build: ping exit $ping_rc, $got answers (4 expected), $moved moves"; cat "$work/cid.ping"; }
    echo "$passes passed, $fails failed"
    [ "$fails" -eq 0 ]
    exit
fi
[ "$ping_rc" -eq 0 ] && [ "$got" -eq 16 ] && ok "cid: 16 of 16 answers across 3 NAT rebindings" \
    || { bad "cid: ping exit $ping_rc, $got of 16 answers"; cat "$work/cid.ping"; }
[ "$moved" -eq 3 ] && ok "cid: the server moved the flow 3 times" \
    || { bad "cid: $moved moves (3 expected)"; grep -i "moved\|flow" "$work/cid.serve.err" | head -20; }
echo "$stats" | grep -q "accepted 1, .*handshakes ok 1 " && ok "cid: one flow, one handshake" \
    || bad "cid: not one flow and one handshake: $stats"

# 2. The same on several cores: `serve --workers 2` shares the port between
# two engines, and the kernel picks a worker's socket by the 4-tuple, so a
# rebound client lands on either. A record reaching the worker that does
# not own its CID is handed to the owner (the CID's first byte names it):
# 6 rebindings, all answered, one flow (without the hand-off each one had
# an even chance of being dropped: all 6 would pass with p = 1/64).
run workers 16 2 4 6 8 10 12 -- --workers 2
[ "$ping_rc" -eq 0 ] && [ "$got" -eq 16 ] && ok "workers 2: 16 of 16 answers across 6 NAT rebindings" \
    || { bad "workers 2: ping exit $ping_rc, $got of 16 answers"; cat "$work/workers.ping"; grep "stats" "$work/workers.serve.err"; }
[ "$moved" -eq 6 ] && ok "workers 2: the flow moved 6 times" || bad "workers 2: $moved moves (6 expected)"
accepted=$(grep "stats: flows open" "$work/workers.serve.err" | sed -n 's/.*accepted \([0-9]*\),.*/\1/p' | awk '{s += $1} END {print s + 0}')
[ "$accepted" -eq 1 ] && ok "workers 2: one flow in all workers" || bad "workers 2: $accepted flows accepted"

# 2b. Connection ID off: the first rebinding ends the conversation
printf 'dtls_cid = 0\n' > "$work/nocid.conf"
run nocid 6 2 -- -c "$work/nocid.conf"
[ "$ping_rc" -ne 0 ] && [ "$got" -eq 2 ] && ok "no cid: answers stop at the rebinding (2 of 6, ping exit $ping_rc)" \
    || { bad "no cid: ping exit $ping_rc, $got answers (2 expected)"; cat "$work/nocid.ping"; }
[ "$moved" -eq 0 ] && ok "no cid: nothing moved" || bad "no cid: $moved moves"
echo "$stats" | grep -q "bad-records [1-9]" && ok "no cid: the records from the new port were dropped as bad records" \
    || bad "no cid: no bad records counted: $stats"

echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
