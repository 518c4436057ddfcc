#!/usr/bin/env bash
# No key material is written anywhere unless tls_keylog_file is set
# (issue 10; docs/security.md "Key log"). wolfSSL's own
# --enable-keylog-export makes the library append every connection's
# secrets to sslkeylog.log in the working directory with no configuration
# at all; the bundled build must not have it, and neither the server nor
# the client may write any file while handshaking.
#
#   1. static: <wolfssl/options.h> defines none of the keylog-export macros
#      (SHOW_SECRETS, WOLFSSL_SSLKEYLOGFILE); neither siptls nor the wolfSSL
#      it loads contains wolfSSL's key log file name "sslkeylog.log"
#   2. behaviour: `siptls serve` and `siptls ping` (TLS 1.2, TLS 1.3, DTLS)
#      run in an empty working directory with HOME, TMPDIR and
#      SSLKEYLOGFILE pointing into empty folders: afterwards all of them are
#      still empty, and under strace neither process opened any file for
#      writing during the handshakes (nor, with WOLFSSL_GETRANDOM, opened
#      /dev/urandom at all: seeds come from getrandom())
#   3. control: with --keylog the same run does write the key log file, and
#      the strace check sees that open: the checks above can fail
#
# Args: SOURCE_DIR BUILD_DIR. Every step is bounded; only the processes
# started here are stopped, by their pids.
set -u
src=$1 build=$2
bin=$build/siptls
pki=$build/pki
[ -x "$bin" ] || { echo "no siptls binary"; exit 77; }
tmp=$(mktemp -d)
serve_pid=
trace_pid=
cleanup() {
    [ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null
    [ -n "$trace_pid" ] && wait "$trace_pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
fails=0 passes=0
ok() { passes=$((passes + 1)); echo "ok   $1"; }
bad() { fails=$((fails + 1)); echo "FAIL $1"; }
cache_get() { sed -n "s/^$1:[A-Z]*=//p" "$build/CMakeCache.txt" | head -n1; }

# ---- 1. static ------------------------------------------------------------------
inc=$(cache_get SIPTLS_WOLFSSL_INCLUDE_DIR)
opts=$inc/wolfssl/options.h
if [ -f "$opts" ]; then
    if grep -Eq '#define (SHOW_SECRETS|WOLFSSL_SSLKEYLOGFILE)\b' "$opts"; then
        bad "$opts defines the keylog export: $(grep -E 'SHOW_SECRETS|SSLKEYLOGFILE' "$opts" | tr '\n' ' ')"
    else
        ok "options.h ($(cache_get SIPTLS_WOLFSSL)): no SHOW_SECRETS, no WOLFSSL_SSLKEYLOGFILE"
    fi
else
    bad "no wolfssl/options.h at '$opts' (SIPTLS_WOLFSSL_INCLUDE_DIR)"
fi
# The wolfSSL actually linked: inside siptls (bundled) or the shared
# library it loads (system).
objs=("$bin")
wolf_so=$(ldd "$bin" | sed -n 's/.*libwolfssl[^ ]* => \([^ ]*\).*/\1/p')
[ -n "$wolf_so" ] && objs+=("$wolf_so")
for o in "${objs[@]}"; do
    if grep -aq 'sslkeylog\.log' "$o"; then
        bad "$o contains \"sslkeylog.log\" (wolfSSL's keylog export)"
    else
        ok "$(basename "$o"): no \"sslkeylog.log\""
    fi
done

# ---- 2. behaviour ---------------------------------------------------------------------
if ! command -v strace >/dev/null; then
    echo "strace not installed (scripts/test.sh installs it)"
    exit 1
fi
getrandom=0
grep -q '#define WOLFSSL_GETRANDOM' "$opts" 2>/dev/null && getrandom=1
# LeakSanitizer cannot run under ptrace (strace): off for the traced
# processes of an ASan build (the other tests look for leaks).
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0

# One run: serve + three pings from the watched working directory. $1: extra
# serve arguments. Leaves the traces and logs in $tmp/logs.N.
run=0
one_run() {
    run=$((run + 1))
    local logs=$tmp/logs.$run
    cwd=$tmp/cwd.$run home=$tmp/home.$run tmpd=$tmp/tmpdir.$run
    mkdir -p "$logs" "$cwd" "$home" "$tmpd"
    envkl=$tmp/home.$run/sslkeylog-from-env.log
    (
        cd "$cwd" || exit 1
        HOME=$home TMPDIR=$tmpd SSLKEYLOGFILE=$envkl exec strace -f -qq -e trace=open,openat,creat \
            -o "$logs/serve.trace" "$bin" serve --listen tls:127.0.0.1:0 --listen dtls:127.0.0.1:0 \
            --cert "$pki/server.pem" --key "$pki/server.key" "$@" >"$logs/serve.out" 2>"$logs/serve.err"
    ) &
    trace_pid=$!
    local tport= dport=
    for _ in $(seq 1 200); do
        tport=$(sed -n 's/.*ready on tls:.* port \([0-9]*\).*/\1/p' "$logs/serve.out" 2>/dev/null)
        dport=$(sed -n 's/.*ready on dtls:.* port \([0-9]*\).*/\1/p' "$logs/serve.out" 2>/dev/null)
        [ -n "$tport" ] && [ -n "$dport" ] && break
        kill -0 "$trace_pid" 2>/dev/null || break
        sleep 0.05
    done
    serve_pid=$(pgrep -P "$trace_pid" -f 'siptls serve' | head -n1)
    if [ -z "$tport" ] || [ -z "$dport" ] || [ -z "$serve_pid" ]; then
        bad "run $run: serve did not start: $(cat "$logs/serve.err")"
        return 1
    fi
    local start_line
    start_line=$(wc -l <"$logs/serve.trace")
    printf 'tls_method = TLSv1_2\n' >"$logs/tls12.conf"
    local i=0 uri conf
    for what in "tls:127.0.0.1:$tport TLSv1_2" "tls:127.0.0.1:$tport -" "dtls:127.0.0.1:$dport -"; do
        i=$((i + 1))
        uri=${what% *} conf=${what#* }
        args=(ping "$uri" --insecure)
        [ "$conf" = TLSv1_2 ] && args+=(-c "$logs/tls12.conf")
        if (cd "$cwd" && HOME=$home TMPDIR=$tmpd SSLKEYLOGFILE=$envkl timeout 20 \
            strace -f -qq -e trace=open,openat,creat -o "$logs/ping$i.trace" \
            "$bin" "${args[@]}" >"$logs/ping$i.out" 2>&1); then
            :
        else
            bad "run $run: siptls ${args[*]} failed: $(cat "$logs/ping$i.out")"
        fi
    done
    sleep 0.2 # strace writes each line as it happens; let the last ones land
    head -n "$(wc -l <"$logs/serve.trace")" "$logs/serve.trace" | tail -n +"$((start_line + 1))" \
        >"$logs/serve.handshakes.trace"
    kill "$serve_pid" 2>/dev/null
    wait "$trace_pid" 2>/dev/null
    serve_pid= trace_pid=
    return 0
}

# Opens for writing in a trace (not failed ones, not coverage counters).
writes() { grep -E 'O_WRONLY|O_RDWR|O_CREAT|creat\(' "$@" | grep -v ' = -1 ' | grep -v '\.gcda"'; }

if one_run; then
    logs=$tmp/logs.1
    for d in "$cwd" "$home" "$tmpd"; do
        left=$(find "$d" -mindepth 1 | head -n5)
        if [ -n "$left" ]; then
            bad "$(basename "$d"): files appeared: $left"
        else
            ok "$(basename "$d") is still empty after TLS 1.2, TLS 1.3 and DTLS handshakes"
        fi
    done
    [ -e "$envkl" ] && bad "SSLKEYLOGFILE ($envkl) was written" ||
        ok "SSLKEYLOGFILE is not honoured (nothing at $envkl)"
    found=$(find "$tmp" -name 'sslkeylog*' | head -n3)
    [ -n "$found" ] && bad "sslkeylog file(s): $found" || ok "no sslkeylog* file anywhere in the run's folders"
    w=$(writes "$logs/serve.handshakes.trace" "$logs"/ping*.trace)
    [ -n "$w" ] && bad "a file was opened for writing during the handshakes: $w" ||
        ok "strace: no file opened for writing by serve (during the handshakes) or ping"
    n_rand=$(grep -c 'urandom' "$logs/serve.handshakes.trace")
    if ((getrandom)); then
        ((n_rand == 0)) && ok "strace: no /dev/urandom opened per connection (WOLFSSL_GETRANDOM)" ||
            bad "$n_rand /dev/urandom opens during 3 handshakes despite WOLFSSL_GETRANDOM"
    else
        echo "note: this wolfSSL has no WOLFSSL_GETRANDOM: $n_rand /dev/urandom opens during 3 handshakes"
    fi
fi

# ---- 3. control: a configured key log is written, and the checks see it -----------
kl=$tmp/keys.log
if one_run --keylog "$kl"; then
    logs=$tmp/logs.2
    if grep -q '^CLIENT_RANDOM [0-9a-f]\{64\} [0-9a-f]\{96\}$' "$kl" 2>/dev/null; then
        ok "control: --keylog writes the TLS 1.2 key to its file"
    else
        bad "control: --keylog $kl has no CLIENT_RANDOM line"
    fi
    if grep -q '#define HAVE_SECRET_CALLBACK' "$opts" 2>/dev/null; then
        # the TLS 1.3 ping (the second) through the secret callback, and
        # the DTLS ping (the third) too where it is DTLS 1.3
        want13=4
        "$bin" --version | grep -q DTLSv1.3 && want13=8
        n13=$(grep -Ec '^(CLIENT|SERVER)_(HANDSHAKE_)?TRAFFIC_SECRET(_0)? [0-9a-f]{64} [0-9a-f]{64,96}$' "$kl")
        ((n13 == want13)) &&
            ok "control: --keylog writes the 4 TLS 1.3 traffic secrets of each (D)TLS 1.3 ping ($want13)" ||
            bad "control: $n13 TLS 1.3 secret lines in $kl (want $want13): $(cut -c1-40 "$kl")"
    fi
    writes "$logs/serve.handshakes.trace" | grep -q "$kl" &&
        ok "control: strace sees the key log file opened for writing" ||
        bad "control: strace did not see $kl opened (the check above proves nothing)"
fi

echo "test_keylog_off: $passes passed, $fails failed"
[ "$fails" -eq 0 ]
