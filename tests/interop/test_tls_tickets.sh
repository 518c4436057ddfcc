#!/usr/bin/env bash
# TLS 1.2 session tickets (RFC 5077) as OpenSSL's client sees them
# (docs/security.md "Session resumption"):
#   1. `siptls serve` A (its own ticket key, session cache off) issues a TLS
#      1.2 ticket, and the client resumes with it on A (so by the ticket);
#   2. serve B, with another ticket key, cannot decrypt that ticket: the
#      client's handshake with it is a full one and succeeds (RFC 5077
#      §3.4), not an abort;
#   3. serve C, with A's key file, accepts A's ticket (two engines, one key).
# With Debian's wolfSSL 5.5.4 (-DSIPTLS_WOLFSSL=system) siptls issues no
# TLS 1.2 tickets (docs/security.md "Session resumption"): step 1 then
# checks that there is no ticket, step 2 still that the handshake
# succeeds.
# Args: SIPTLS_BIN PKI_DIR BUILD_DIR. Every peer runs under `timeout`; only
# our own pids are stopped.
set -u
bin=$1 pki=$2
# shellcheck source=../support/shtest.sh
. "$(dirname "${BASH_SOURCE[0]}")/../support/shtest.sh"
[ -x "$bin" ] || { echo "FAIL no siptls CLI at $bin"; exit 1; }
need openssl
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; rm -rf "$work"; }
trap cleanup EXIT
fails=0 passes=0
ok() { passes=$((passes + 1)); echo "ok   $1"; }
bad() { fails=$((fails + 1)); echo "FAIL $1"; }

# TLS 1.2 tickets exist from wolfSSL 5.7 on (src/secctx_internal.h).
wolf=$("$bin" --version | sed -n '1s/.*(wolfSSL \([0-9]*\)\.\([0-9]*\).*/\1 \2/p')
read -r wmaj wmin <<<"$wolf"
tickets12=0
((wmaj > 5 || (wmaj == 5 && wmin >= 7))) && tickets12=1
echo "wolfSSL $wmaj.$wmin: TLS 1.2 tickets expected: $tickets12"

head -c 80 /dev/urandom > "$work/key-a"
head -c 80 /dev/urandom > "$work/key-b"
start() { # name keyfile: a serve with that ticket key and no session cache; sets $port
    printf 'tls_ticket_key_file = %s\ntls_session_cache = 0\n' "$2" > "$work/$1.conf"
    timeout 120 "$bin" serve -c "$work/$1.conf" --listen tls:127.0.0.1:0 \
        --cert "$pki/server.pem" --key "$pki/server.key" -q \
        > "$work/$1.out" 2> "$work/$1.err" &
    pids+=($!)
    port=$(serve_port "$work/$1.out" tls "$!") ||
        { echo "serve $1 did not start"; cat "$work/$1.err"; exit 1; }
}
start a "$work/key-a"
port_a=$port
start b "$work/key-b"
port_b=$port
start c "$work/key-a"
port_c=$port

client() { # port out [openssl options...]: one TLS 1.2 handshake, then EOF
    local port=$1 out=$2
    shift 2
    timeout 20 openssl s_client -connect "127.0.0.1:$port" -tls1_2 -CAfile "$pki/ca.pem" \
        -verify_return_error "$@" < /dev/null > "$out" 2>&1
}

# 1. a ticket from A, resumed on A
client "$port_a" "$work/1.out" -sess_out "$work/sess.pem"
grep -q "^New, TLSv1.2" "$work/1.out" && ok "A: full TLS 1.2 handshake" ||
    bad "A: first handshake: $(cat "$work/1.out")"
has_ticket=0
openssl sess_id -in "$work/sess.pem" -noout -text 2> /dev/null | grep -q "TLS session ticket:" &&
    has_ticket=1
if ((tickets12)); then
    ((has_ticket)) && ok "A issued a TLS 1.2 session ticket" || bad "A issued no TLS 1.2 ticket"
    client "$port_a" "$work/2.out" -sess_in "$work/sess.pem"
    grep -q "^Reused, TLSv1.2" "$work/2.out" && ok "A: resumed with its ticket (no session cache)" ||
        bad "A: no resumption: $(grep -E '^(New|Reused)' "$work/2.out")"
else
    ((has_ticket)) && bad "wolfSSL $wmaj.$wmin: a TLS 1.2 ticket was issued" ||
        ok "wolfSSL $wmaj.$wmin: no TLS 1.2 ticket (as documented)"
fi

# 2. B cannot decrypt A's ticket: a full handshake that succeeds
# (5.5.4 with its session cache off gives the client nothing to offer)
offer=()
[ -s "$work/sess.pem" ] && offer=(-sess_in "$work/sess.pem")
client "$port_b" "$work/3.out" "${offer[@]}"
rc=$?
if ((rc == 0)) && grep -q "^New, TLSv1.2, Cipher is ECDHE" "$work/3.out" &&
    grep -q "Verify return code: 0 (ok)" "$work/3.out"; then
    ok "B (another ticket key): full handshake with what A gave (${offer[*]:-nothing}) offered, no abort"
else
    bad "B with A's ticket: exit $rc: $(grep -E '^(New|Reused)|alert|error' "$work/3.out" | head -n5)"
fi
# wolfSSL 5.7.2 issues no new ticket in place of one it rejected (noted in
# docs/security.md); not asserted, it would be an improvement.
grep -q "TLS session ticket:" "$work/3.out" && echo "note: B issued a new ticket" ||
    echo "note: B issued no new ticket in that full handshake"

# 3. C shares A's key file: A's ticket resumes there
if ((tickets12)); then
    client "$port_c" "$work/4.out" -sess_in "$work/sess.pem"
    grep -q "^Reused, TLSv1.2" "$work/4.out" && ok "C (A's key file): resumed with A's ticket" ||
        bad "C: $(grep -E '^(New|Reused)' "$work/4.out")"
fi

echo "test_tls_tickets: $passes passed, $fails failed"
[ "$fails" -eq 0 ]
