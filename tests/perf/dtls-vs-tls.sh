#!/usr/bin/env bash
# siptls over dtls: vs tls:, the same figures in one run, against one
# `siptls serve` with both listeners (pinned to one CPU, the load
# generator to the other). Run by hand, not by CI.
#
#   tests/perf/dtls-vs-tls.sh [BUILD_DIR]        (default: ./build)
#
# Environment (defaults in brackets): RUNS [3], DURATION [10], WARMUP [1],
# HS_CONNS [8], IDLE_CONNS [10000] (0 = skip), IDLE_HOLD [10], HELLOS [10000]
# (cookie-less ClientHellos, 0 = skip), SERVER_CPU [0], BENCH_CPU [1],
# OUT [a new temp dir] (raw JSON of every run), CASES [all: msgs1 msgs50
# hs12 hs13 res12; empty: none] (the bench cases to run), BENCH_BIN [BUILD_DIR/siptls]
# (the load generator: e.g. an older build's, whose DTLS client sends one
# datagram per request), DTLS_VERSIONS [empty: one dtls column, the version
# the bench negotiates (DTLS 1.3 where the build has it; 1.2 where a case
# pins --tls 1.2)] (the DTLS columns, e.g. "1.2 1.3 1.3nocid": each is the
# `--tls` version given to the bench; "nocid" runs against a second server
# with dtls_cid = 0; a case that pins a version (hs12, res12, hs13) runs only
# the columns of that version, and hs13 gets DTLS columns too; the
# cookie-less hellos and the idle sessions run once per column).
#
# Cases: OPTIONS 1 x 10 and 50 x 10 in flight, full handshakes (TLS 1.2 vs
# DTLS 1.2, the same suite family; TLS 1.3 for reference), resumption
# (TLS 1.2 vs DTLS 1.2), idle connections/sessions memory (RSS growth of
# the server), and the server CPU spent on each cookie-less ClientHello
# (the HelloVerifyRequest path a spoofed flood hits): one ClientHello is
# captured from `siptls ping dtls:` and replayed HELLOS times from one UDP
# socket; the server's `dtls cookies` counter says how many it answered.
#
# The loopback handshakes all come from 127.0.0.1, so the server runs with
# dtls_handshake_rate = 0 (no per-source limit). Every process started here
# is stopped by pid on exit; every step is bounded by `timeout`.
set -u
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
build=${1:-$src/build}
bin=$build/siptls
# shellcheck source=tests/perf/lib.sh
. "$here/lib.sh"

RUNS=${RUNS:-3}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-1}
HS_CONNS=${HS_CONNS:-8}
IDLE_CONNS=${IDLE_CONNS:-10000}
IDLE_HOLD=${IDLE_HOLD:-10}
HELLOS=${HELLOS:-10000}
SERVER_CPU=${SERVER_CPU:-0}
BENCH_CPU=${BENCH_CPU:-1}
CASES=${CASES-msgs1 msgs50 hs12 hs13 res12}
BENCH_BIN=${BENCH_BIN:-$bin}
DTLS_VERSIONS=${DTLS_VERSIONS:-}
want_case() { case " $CASES " in *" $1 "*) return 0 ;; esac; return 1; }
# The DTLS columns: transport names (dtls, or dtls12 / dtls13 / dtls13nocid).
dtls_cols=dtls
if [ -n "$DTLS_VERSIONS" ]; then
    dtls_cols=""
    for v in $DTLS_VERSIONS; do
        case $v in
            1.2 | 1.3 | 1.2nocid | 1.3nocid) dtls_cols="$dtls_cols dtls${v//./}" ;;
            *) echo "DTLS_VERSIONS: '$v' is not 1.2, 1.3, 1.2nocid or 1.3nocid"; exit 2 ;;
        esac
    done
    dtls_cols=${dtls_cols# }
fi
# col_version COL: the DTLS version of a column ("" for dtls: not pinned).
col_version() { case $1 in dtls12*) echo 1.2 ;; dtls13*) echo 1.3 ;; *) echo "" ;; esac; }
col_nocid() { case $1 in *nocid) return 0 ;; esac; return 1; }
OUT=${OUT:-$(mktemp -d /tmp/siptls-dtls-vs-tls.XXXXXX)}
mkdir -p "$OUT"
work=$(mktemp -d)
trap 'perf_cleanup; rm -rf "$work"' EXIT
trap 'exit 130' INT TERM

[ -x "$bin" ] || { echo "no $bin: build first (cmake -S . -B build && cmake --build build)"; exit 2; }
pki=$build/pki
[ -f "$pki/server.pem" ] || timeout 120 bash "$src/tests/certs/make-test-pki.sh" "$pki" > /dev/null ||
    { echo "cannot make the test PKI"; exit 1; }

ulimit -n "$(ulimit -Hn)" 2> /dev/null
nofile=$(ulimit -n)
if [ "$IDLE_CONNS" -gt 0 ] && [ "$nofile" -lt $((IDLE_CONNS + 200)) ]; then
    echo "open-file limit $nofile is too low for $IDLE_CONNS connections; using $((nofile - 200))"
    echo "(raise it with: ulimit -n N as root, or prlimit --nofile=N:N -- $0)"
    IDLE_CONNS=$((nofile - 200))
fi
max_conns=$((IDLE_CONNS + 1000))
cat > "$work/serve.conf" << EOF
tls_max_connections = $max_conns
dtls_max_sessions = $max_conns
tls_connection_lifetime = 3600
dtls_session_lifetime = 3600
dtls_handshake_rate = 0
EOF
{ cat "$work/serve.conf"; echo "dtls_cid = 0"; } > "$work/serve-nocid.conf"
server_life=$(awk -v r="$RUNS" -v d="$DURATION" -v w="$WARMUP" -v n="$IDLE_CONNS" -v h="$IDLE_HOLD" \
    'BEGIN {printf "%d", r * 9 * (d + w + 30) + r * 2 * (h + 120 + n / 50) + 900}')

srv_pid="" srv_wrap="" tport="" dport=""
start_server() { # [CONF-SUFFIX] (-nocid: the dtls_cid = 0 configuration)
    local f=$work/serve${1:-}
    : > "$f.out"
    (exec taskset -c "$SERVER_CPU" timeout -s TERM "$server_life" "$bin" serve -c "$f.conf" -q \
        --listen tls:127.0.0.1:0 --listen dtls:127.0.0.1:0 --cert "$pki/server.pem" --key "$pki/server.key" \
        > "$f.out" 2> "$f.err") &
    srv_wrap=$!
    PERF_STARTED+=("$srv_wrap")
    if ! wait_ready "$f.out" "ready on dtls" 10 || ! srv_pid=$(perf_child "$srv_wrap" 5); then
        echo "siptls serve did not start:"
        cat "$f.err"
        exit 1
    fi
    tport=$(sed -n 's/.*ready on tls:.* port \([0-9]*\).*/\1/p' "$f.out" | head -n1)
    dport=$(sed -n 's/.*ready on dtls:.* port \([0-9]*\).*/\1/p' "$f.out" | head -n1)
}
stop_server() {
    [ -n "$srv_wrap" ] && perf_stop "$srv_wrap"
    srv_pid="" srv_wrap=""
}
# A second server with dtls_cid = 0 (nsrv_*), when a "nocid" column needs it.
nsrv_pid="" nsrv_wrap="" ndport=""
start_nocid_server() {
    case " $dtls_cols " in *nocid*) ;; *) return 0 ;; esac
    local p=$srv_pid w=$srv_wrap t=$tport d=$dport
    start_server -nocid
    nsrv_pid=$srv_pid nsrv_wrap=$srv_wrap ndport=$dport
    srv_pid=$p srv_wrap=$w tport=$t dport=$d
}
stop_nocid_server() {
    [ -n "$nsrv_wrap" ] && perf_stop "$nsrv_wrap"
    nsrv_pid="" nsrv_wrap="" ndport=""
}

# col_target COL: "SCHEME PORT SERVER-PID" of a column (tls or a DTLS column).
col_target() {
    case $1 in
        tls) echo "tls $tport $srv_pid" ;;
        *nocid) echo "dtls $ndport $nsrv_pid" ;;
        *) echo "dtls $dport $srv_pid" ;;
    esac
}
# bench_run COLUMN NAME ARGS...  (a DTLS column's version goes last: the last --tls wins)
bench_run() {
    local t=$1 name=$2 scheme port pid ver extra=()
    shift 2
    read -r scheme port pid <<< "$(col_target "$t")"
    ver=$(col_version "$t")
    [ -n "$ver" ] && extra=(--tls "$ver")
    timeout "$(awk -v d="$DURATION" -v w="$WARMUP" 'BEGIN {printf "%d", d + w + 60}')" taskset -c "$BENCH_CPU" \
        "$BENCH_BIN" bench "$scheme:127.0.0.1:$port" --ca "$pki/ca.pem" --server-pid "$pid" --json "$@" \
        "${extra[@]}" > "$OUT/$name.json" 2> "$OUT/$name.err"
    local rc=$?
    printf '  %-24s rc=%d  %s/s  server %s us/op  %s %s  resumed %s  errors %s\n' "$name" "$rc" \
        "$(fmt "$(jget "$OUT/$name.json" "j['ops_per_s']")")" \
        "$(fmt "$(jget "$OUT/$name.json" "j['server']['cpu_us_per_op']")")" \
        "$(jget "$OUT/$name.json" "j['tls_version']")" "$(jget "$OUT/$name.json" "j['cipher']")" \
        "$(jget "$OUT/$name.json" "j['resumed']")" "$(jget "$OUT/$name.json" "j['errors']['total']")"
}

echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs; server on CPU $SERVER_CPU, bench on CPU $BENCH_CPU"
echo "siptls: $("$bin" --version | head -n1)"
echo "raw results: $OUT"
echo "DTLS columns: $dtls_cols; load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)"
start_server
start_nocid_server

# case id | label | transports | bench arguments
cases=(
    "msgs1|OPTIONS, 1 conn x 10 in flight|tls dtls|--mode msgs -C 1 -w 10"
    "msgs50|OPTIONS, 50 conns x 10 in flight|tls dtls|--mode msgs -C 50 -w 10"
    "hs12|full handshake (D)TLS 1.2|tls dtls|--mode handshakes --tls 1.2 -C $HS_CONNS"
    "hs13|full handshake TLS 1.3 (reference)|tls|--mode handshakes --tls 1.3 -C $HS_CONNS"
    "res12|resumption (D)TLS 1.2|tls dtls|--mode resume --tls 1.2 -C $HS_CONNS"
)
# case_cols ID TRANSPORTS ARGS: the columns of a case: tls, and the DTLS
# columns whose version is the --tls the case pins (all when it pins none).
case_cols() {
    local pin="" c d v out="" ts=$2
    case " $3 " in *" --tls 1.2 "*) pin=1.2 ;; *" --tls 1.3 "*) pin=1.3 ;; esac
    [ -n "$DTLS_VERSIONS" ] && [ "$1" = hs13 ] && ts="tls dtls"
    for c in $ts; do
        if [ "$c" = dtls ]; then
            for d in $dtls_cols; do
                v=$(col_version "$d")
                if [ -z "$pin" ] || [ -z "$v" ] || [ "$v" = "$pin" ]; then
                    out="$out $d"
                fi
            done
        else
            out="$out $c"
        fi
    done
    echo "${out# }"
}
for c in "${cases[@]}"; do
    IFS='|' read -r id label transports args <<< "$c"
    want_case "$id" || continue
    transports=$(case_cols "$id" "$transports" "$args")
    [ -n "$DTLS_VERSIONS" ] && [ "$id" = hs13 ] && label="full handshake (D)TLS 1.3"
    echo "== $label (load average $(cut -d' ' -f1-3 /proc/loadavg))"
    for run in $(seq 1 "$RUNS"); do
        for t in $transports; do
            # shellcheck disable=SC2086
            bench_run "$t" "$id-$t-$run" $args -d "$DURATION" --warmup "$WARMUP"
        done
    done
done

# Cookie-less ClientHellos: capture one from a real siptls DTLS client, then
# replay it; the server answers each statelessly (DTLS 1.2: a
# HelloVerifyRequest; DTLS 1.3: a HelloRetryRequest with a cookie) and keeps
# no state. CPU per answered hello from /proc and the server's counters (the
# `dtls cookies` counter counts both kinds of answer).
# task_cpu_ns PID: CPU time of all threads of PID in ns (schedstat: exact,
# where /proc/PID/stat counts 10 ms ticks).
task_cpu_ns() {
    cat /proc/"$1"/task/*/schedstat 2> /dev/null | awk '{s += $1} END {printf "%.0f", s}'
}
hello_run() { # COLUMN RUN
    local name="hellos-$1-$2" cpu0 cpu1 c0 c1 scheme port pid err=$work/serve.err
    read -r scheme port pid <<< "$(col_target "$1")"
    col_nocid "$1" && err=$work/serve-nocid.err
    kill -USR1 "$pid"
    sleep 0.3
    c0=$(grep -o 'dtls cookies [0-9]*' "$err" | tail -n1 | awk '{print $3}')
    cpu0=$(task_cpu_ns "$pid")
    timeout 120 taskset -c "$BENCH_CPU" "$PY" - "$work/hello-$1.bin" "$port" "$HELLOS" "$OUT/$name.answer" << 'EOF'
import socket, sys, time
hello = open(sys.argv[1], "rb").read()
port, n = int(sys.argv[2]), int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 16)
s.setblocking(False)
sent = 0
first = None
while sent < n:
    # bursts of 50, then drain the answers: the server's socket buffer
    # never overflows, so every hello is answered
    for _ in range(min(50, n - sent)):
        s.sendto(hello, ("127.0.0.1", port))
        sent += 1
    time.sleep(0.002)
    try:
        while True:
            d = s.recv(2048)
            if first is None:
                first = d
    except BlockingIOError:
        pass
# What the server answered: handshake type 3 = HelloVerifyRequest (DTLS
# 1.2), 2 = ServerHello (here the HelloRetryRequest of DTLS 1.3).
with open(sys.argv[4], "w") as f:
    if first is not None and len(first) > 13:
        kind = {3: "HelloVerifyRequest", 2: "HelloRetryRequest"}.get(first[13], "type %d" % first[13])
        f.write("answer=%s bytes=%d\n" % (kind, len(first)))
    else:
        f.write("answer=none\n")
EOF
    sleep 0.5
    cpu1=$(task_cpu_ns "$pid")
    kill -USR1 "$pid"
    sleep 0.3
    c1=$(grep -o 'dtls cookies [0-9]*' "$err" | tail -n1 | awk '{print $3}')
    awk -v a="$cpu0" -v b="$cpu1" -v x="$c0" -v y="$c1" 'BEGIN {
        n = y - x; cpu = (b - a) / 1e9
        printf "answered=%d\ncpu_s=%.3f\nus_per_hello=%s\n", n, cpu, (n > 0 ? sprintf("%.2f", cpu * 1e6 / n) : "")
    }' > "$OUT/$name.txt"
    printf '  %-24s %s hellos answered, server %s us/hello, %s\n' "$name" \
        "$(sed -n 's/answered=//p' "$OUT/$name.txt")" "$(sed -n 's/us_per_hello=//p' "$OUT/$name.txt")" \
        "$(cat "$OUT/$name.answer" 2> /dev/null)"
}
# capture_hello COLUMN: the ClientHello of `siptls ping dtls:` with the
# column's version range (1.2: dtls_max_version = 1.2; 1.3 and the plain
# dtls column: ping's defaults, DTLS 1.2 and 1.3 offered, 1.3 preferred).
capture_hello() {
    local cap
    : > "$work/ping-$1.conf"
    [ "$(col_version "$1")" = 1.2 ] && echo "dtls_max_version = 1.2" > "$work/ping-$1.conf"
    rm -f "$work/cap.port"
    # A UDP socket pretends to be the server for one datagram.
    timeout 20 "$PY" - "$work/hello-$1.bin" "$work/cap.port" << 'EOF' &
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
open(sys.argv[2], "w").write(str(s.getsockname()[1]))
s.settimeout(15)
data, _ = s.recvfrom(4096)
open(sys.argv[1], "wb").write(data)
EOF
    cap=$!
    PERF_STARTED+=("$cap")
    wait_ready "$work/cap.port" . 10
    timeout 5 "$bin" ping "dtls:127.0.0.1:$(cat "$work/cap.port")" -c "$work/ping-$1.conf" --insecure -t 1 \
        > /dev/null 2>&1
    wait "$cap"
    perf_forget "$cap"
    [ -s "$work/hello-$1.bin" ]
}
hello_cols=""
if [ "$HELLOS" -gt 0 ]; then
    echo "== $HELLOS cookie-less ClientHellos (load average $(cut -d' ' -f1-3 /proc/loadavg))"
    for t in $dtls_cols; do
        if capture_hello "$t"; then
            hello_cols="$hello_cols $t"
            echo "  $t: captured a ClientHello of $(stat -c %s "$work/hello-$t.bin") bytes"
        else
            echo "  $t: could not capture a ClientHello: skipped"
        fi
    done
    for run in $(seq 1 "$RUNS"); do
        for t in $hello_cols; do
            hello_run "$t" "$run"
        done
    done
    [ -n "$hello_cols" ] || HELLOS=0
fi

# Idle connections / sessions: a fresh server each, RSS growth while held.
idle_run() { # COLUMN RUN
    local t=$1 name="idle-$1-$2" scheme port ver extra=()
    stop_server
    stop_nocid_server
    if col_nocid "$t"; then start_server -nocid; else start_server; fi
    scheme=dtls port=$dport
    [ "$t" = tls ] && scheme=tls port=$tport
    ver=$(col_version "$t")
    [ -n "$ver" ] && extra=(--tls "$ver")
    timeout 10 "$bin" ping "$scheme:127.0.0.1:$port" --ca "$pki/ca.pem" > /dev/null 2>&1
    sleep 0.5
    timeout $((IDLE_HOLD + 30 + IDLE_CONNS / 50 + 60)) taskset -c "$BENCH_CPU" "$bin" bench \
        "$scheme:127.0.0.1:$port" --ca "$pki/ca.pem" --mode idle -C "$IDLE_CONNS" -d "$IDLE_HOLD" \
        --rss-pid "$srv_pid" --json "${extra[@]}" > "$OUT/$name.json" 2> "$OUT/$name.err"
    printf '  %-24s %s up, %s, server RSS %s -> %s KiB: %s bytes/conn, errors %s\n' "$name" \
        "$(jget "$OUT/$name.json" "j['connections_up']")" "$(jget "$OUT/$name.json" "j['tls_version']")" \
        "$(jget "$OUT/$name.json" "j['server']['rss_before_kib']")" \
        "$(jget "$OUT/$name.json" "j['server']['rss_after_kib']")" \
        "$(fmt "$(jget "$OUT/$name.json" "j['server']['rss_per_conn_bytes']")")" \
        "$(jget "$OUT/$name.json" "j['errors']['total']")"
}
if [ "$IDLE_CONNS" -gt 0 ]; then
    echo "== $IDLE_CONNS idle connections / sessions (load average $(cut -d' ' -f1-3 /proc/loadavg))"
    for run in $(seq 1 "$RUNS"); do
        for t in tls $dtls_cols; do
            idle_run "$t" "$run"
        done
    done
fi
stop_server
stop_nocid_server
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"

# ---- table ------------------------------------------------------------------
med() { # NAME-PREFIX EXPR  (NAME-PREFIX-RUN.json)
    local r vals=()
    for r in $(seq 1 "$RUNS"); do
        vals+=("$(jget "$OUT/$1-$r.json" "$2")")
    done
    median "${vals[@]}"
}
# One column per DTLS column, then each DTLS column / tls, then (when both
# are there) DTLS 1.3 / DTLS 1.2.
read -r -a cols <<< "$dtls_cols"
v13v12=""
case " $dtls_cols " in *" dtls12 "*) case " $dtls_cols " in *" dtls13 "*) v13v12=1 ;; esac ;; esac
row() { # LABEL METRIC TLS DTLS-VALUES... (one per column, "" when not run)
    local label=$1 metric=$2 tls=$3 i line vals
    shift 3
    vals=("$@")
    line=$(printf '| %-36s | %-24s | %10s |' "$label" "$metric" "$(fmt "$tls")")
    for i in "${!cols[@]}"; do
        line="$line $(printf '%11s |' "$(fmt "${vals[i]}")")"
    done
    for i in "${!cols[@]}"; do
        line="$line $(printf '%9s |' "$(ratio "${vals[i]}" "$tls")")"
    done
    if [ -n "$v13v12" ]; then
        local a="" b=""
        for i in "${!cols[@]}"; do
            [ "${cols[i]}" = dtls13 ] && a=${vals[i]}
            [ "${cols[i]}" = dtls12 ] && b=${vals[i]}
        done
        line="$line $(printf '%9s |' "$(ratio "$a" "$b")")"
    fi
    echo "$line"
}
echo
echo "Medians of $RUNS runs. dtls/tls: for rates < 1 means DTLS is slower, for costs > 1 means DTLS costs more."
hdr=$(printf '| %-36s | %-24s | %10s |' case metric tls)
sep="|$(printf -- '-%.0s' {1..38})|$(printf -- '-%.0s' {1..26})|$(printf -- '-%.0s' {1..12})|"
for c in "${cols[@]}"; do
    hdr="$hdr $(printf '%11s |' "$c")"
    sep="$sep$(printf -- '-%.0s' {1..13})|"
done
for c in "${cols[@]}"; do
    hdr="$hdr $(printf '%9s |' "$c/tls")"
    sep="$sep$(printf -- '-%.0s' {1..11})|"
done
[ -n "$v13v12" ] && hdr="$hdr $(printf '%9s |' "1.3/1.2")" && sep="$sep$(printf -- '-%.0s' {1..11})|"
echo "$hdr"
echo "$sep"
# dmed ID TRANSPORTS EXPR: the medians of each DTLS column ("" when the case did not run it).
dmed() {
    local c out=()
    for c in "${cols[@]}"; do
        case " $2 " in
            *" $c "*) out+=("$(med "$1-$c" "$3")") ;;
            *) out+=("") ;;
        esac
    done
    printf '%s\n' "${out[@]}"
}
for c in "${cases[@]}"; do
    IFS='|' read -r id label transports args <<< "$c"
    want_case "$id" || continue
    transports=$(case_cols "$id" "$transports" "$args")
    [ -n "$DTLS_VERSIONS" ] && [ "$id" = hs13 ] && label="full handshake (D)TLS 1.3"
    unit="req/s"
    cunit="server CPU us/req"
    case $id in
        hs* | res*) unit="handshakes/s"; cunit="server CPU us/handshake" ;;
    esac
    mapfile -t d < <(dmed "$id" "$transports" "j['ops_per_s']")
    row "$label" "$unit" "$(med "$id-tls" "j['ops_per_s']")" "${d[@]}"
    mapfile -t d < <(dmed "$id" "$transports" "j['server']['cpu_us_per_op']")
    row "" "$cunit" "$(med "$id-tls" "j['server']['cpu_us_per_op']")" "${d[@]}"
    case $id in
        res*)
            mapfile -t d < <(dmed "$id" "$transports" "j['resumed_ratio'] * 100")
            row "" "resumed %" "$(med "$id-tls" "j['resumed_ratio'] * 100")" "${d[@]}"
            ;;
    esac
done
if [ "$IDLE_CONNS" -gt 0 ]; then
    mapfile -t d < <(dmed idle "$dtls_cols" "j['server']['rss_per_conn_bytes']")
    row "$IDLE_CONNS idle connections/sessions" "server RSS bytes/conn" \
        "$(med idle-tls "j['server']['rss_per_conn_bytes']")" "${d[@]}"
fi
if [ "$HELLOS" -gt 0 ]; then
    d=()
    for c in "${cols[@]}"; do
        vals=()
        for r in $(seq 1 "$RUNS"); do
            vals+=("$(sed -n 's/us_per_hello=//p' "$OUT/hellos-$c-$r.txt" 2> /dev/null)")
        done
        d+=("$(median "${vals[@]}")")
    done
    row "$HELLOS cookie-less ClientHellos" "server CPU us/hello" "" "${d[@]}"
fi
