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
# hs12 hs13 res12] (the bench cases to run), BENCH_BIN [BUILD_DIR/siptls]
# (the load generator: e.g. an older build's, whose DTLS client sends one
# datagram per request).
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
CASES=${CASES:-msgs1 msgs50 hs12 hs13 res12}
BENCH_BIN=${BENCH_BIN:-$bin}
want_case() { case " $CASES " in *" $1 "*) return 0 ;; esac; return 1; }
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
server_life=$(awk -v r="$RUNS" -v d="$DURATION" -v w="$WARMUP" -v n="$IDLE_CONNS" -v h="$IDLE_HOLD" \
    'BEGIN {printf "%d", r * 9 * (d + w + 30) + r * 2 * (h + 120 + n / 50) + 900}')

srv_pid="" srv_wrap="" tport="" dport=""
start_server() {
    : > "$work/serve.out"
    (exec taskset -c "$SERVER_CPU" timeout -s TERM "$server_life" "$bin" serve -c "$work/serve.conf" -q \
        --listen tls:127.0.0.1:0 --listen dtls:127.0.0.1:0 --cert "$pki/server.pem" --key "$pki/server.key" \
        > "$work/serve.out" 2> "$work/serve.err") &
    srv_wrap=$!
    PERF_STARTED+=("$srv_wrap")
    if ! wait_ready "$work/serve.out" "ready on dtls" 10 || ! srv_pid=$(perf_child "$srv_wrap" 5); then
        echo "siptls serve did not start:"
        cat "$work/serve.err"
        exit 1
    fi
    tport=$(sed -n 's/.*ready on tls:.* port \([0-9]*\).*/\1/p' "$work/serve.out" | head -n1)
    dport=$(sed -n 's/.*ready on dtls:.* port \([0-9]*\).*/\1/p' "$work/serve.out" | head -n1)
}
stop_server() {
    [ -n "$srv_wrap" ] && perf_stop "$srv_wrap"
    srv_pid="" srv_wrap=""
}

# bench_run TRANSPORT NAME ARGS...
bench_run() {
    local t=$1 name=$2 port
    shift 2
    port=$tport
    [ "$t" = dtls ] && port=$dport
    timeout "$(awk -v d="$DURATION" -v w="$WARMUP" 'BEGIN {printf "%d", d + w + 60}')" taskset -c "$BENCH_CPU" \
        "$BENCH_BIN" bench "$t:127.0.0.1:$port" --ca "$pki/ca.pem" --server-pid "$srv_pid" --json "$@" \
        > "$OUT/$name.json" 2> "$OUT/$name.err"
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
start_server

# case id | label | transports | bench arguments
cases=(
    "msgs1|OPTIONS, 1 conn x 10 in flight|tls dtls|--mode msgs -C 1 -w 10"
    "msgs50|OPTIONS, 50 conns x 10 in flight|tls dtls|--mode msgs -C 50 -w 10"
    "hs12|full handshake (D)TLS 1.2|tls dtls|--mode handshakes --tls 1.2 -C $HS_CONNS"
    "hs13|full handshake TLS 1.3 (reference)|tls|--mode handshakes --tls 1.3 -C $HS_CONNS"
    "res12|resumption (D)TLS 1.2|tls dtls|--mode resume --tls 1.2 -C $HS_CONNS"
)
for c in "${cases[@]}"; do
    IFS='|' read -r id label transports args <<< "$c"
    want_case "$id" || continue
    echo "== $label"
    for run in $(seq 1 "$RUNS"); do
        for t in $transports; do
            # shellcheck disable=SC2086
            bench_run "$t" "$id-$t-$run" $args -d "$DURATION" --warmup "$WARMUP"
        done
    done
done

# Cookie-less ClientHellos: capture one from a real siptls DTLS client, then
# replay it; the server answers each with a HelloVerifyRequest and keeps no
# state. CPU per answered hello from /proc and the server's counters.
# task_cpu_ns PID: CPU time of all threads of PID in ns (schedstat: exact,
# where /proc/PID/stat counts 10 ms ticks).
task_cpu_ns() {
    cat /proc/"$1"/task/*/schedstat 2> /dev/null | awk '{s += $1} END {printf "%.0f", s}'
}
hello_run() { # RUN
    local name="hellos-$1" cpu0 cpu1 c0 c1
    kill -USR1 "$srv_pid"
    sleep 0.3
    c0=$(grep -o 'dtls cookies [0-9]*' "$work/serve.err" | tail -n1 | awk '{print $3}')
    cpu0=$(task_cpu_ns "$srv_pid")
    timeout 120 taskset -c "$BENCH_CPU" "$PY" - "$work/hello.bin" "$dport" "$HELLOS" << 'EOF'
import socket, sys, time
hello = open(sys.argv[1], "rb").read()
port, n = int(sys.argv[2]), int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 16)
s.setblocking(False)
sent = 0
while sent < n:
    # bursts of 50, then drain the HelloVerifyRequests: the server's socket
    # buffer never overflows, so every hello is answered
    for _ in range(min(50, n - sent)):
        s.sendto(hello, ("127.0.0.1", port))
        sent += 1
    time.sleep(0.002)
    try:
        while True:
            s.recv(2048)
    except BlockingIOError:
        pass
EOF
    sleep 0.5
    cpu1=$(task_cpu_ns "$srv_pid")
    kill -USR1 "$srv_pid"
    sleep 0.3
    c1=$(grep -o 'dtls cookies [0-9]*' "$work/serve.err" | tail -n1 | awk '{print $3}')
    awk -v a="$cpu0" -v b="$cpu1" -v x="$c0" -v y="$c1" 'BEGIN {
        n = y - x; cpu = (b - a) / 1e9
        printf "answered=%d\ncpu_s=%.3f\nus_per_hello=%s\n", n, cpu, (n > 0 ? sprintf("%.2f", cpu * 1e6 / n) : "")
    }' > "$OUT/$name.txt"
    printf '  %-24s %s hellos answered, server %s us/hello\n' "$name" \
        "$(sed -n 's/answered=//p' "$OUT/$name.txt")" "$(sed -n 's/us_per_hello=//p' "$OUT/$name.txt")"
}
if [ "$HELLOS" -gt 0 ]; then
    echo "== $HELLOS cookie-less ClientHellos"
    # Capture: a UDP socket pretends to be the server for one datagram.
    timeout 20 "$PY" - "$work/hello.bin" "$work/cap.port" << 'EOF' &
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
    timeout 5 "$bin" ping "dtls:127.0.0.1:$(cat "$work/cap.port")" --insecure -t 1 > /dev/null 2>&1
    wait "$cap"
    perf_forget "$cap"
    if [ -s "$work/hello.bin" ]; then
        for run in $(seq 1 "$RUNS"); do
            hello_run "$run"
        done
    else
        echo "  could not capture a ClientHello: skipped"
        HELLOS=0
    fi
fi

# Idle connections / sessions: a fresh server each, RSS growth while held.
idle_run() { # TRANSPORT RUN
    local t=$1 name="idle-$1-$2" port
    stop_server
    start_server
    port=$tport
    [ "$t" = dtls ] && port=$dport
    timeout 10 "$bin" ping "$t:127.0.0.1:$port" --ca "$pki/ca.pem" > /dev/null 2>&1
    sleep 0.5
    timeout $((IDLE_HOLD + 30 + IDLE_CONNS / 50 + 60)) taskset -c "$BENCH_CPU" "$bin" bench \
        "$t:127.0.0.1:$port" --ca "$pki/ca.pem" --mode idle -C "$IDLE_CONNS" -d "$IDLE_HOLD" \
        --rss-pid "$srv_pid" --json > "$OUT/$name.json" 2> "$OUT/$name.err"
    printf '  %-24s %s up, server RSS %s -> %s KiB: %s bytes/conn, errors %s\n' "$name" \
        "$(jget "$OUT/$name.json" "j['connections_up']")" \
        "$(jget "$OUT/$name.json" "j['server']['rss_before_kib']")" \
        "$(jget "$OUT/$name.json" "j['server']['rss_after_kib']")" \
        "$(fmt "$(jget "$OUT/$name.json" "j['server']['rss_per_conn_bytes']")")" \
        "$(jget "$OUT/$name.json" "j['errors']['total']")"
}
if [ "$IDLE_CONNS" -gt 0 ]; then
    echo "== $IDLE_CONNS idle connections / sessions"
    for run in $(seq 1 "$RUNS"); do
        for t in tls dtls; do
            idle_run "$t" "$run"
        done
    done
fi
stop_server

# ---- table ------------------------------------------------------------------
med() { # NAME-PREFIX EXPR  (NAME-PREFIX-RUN.json)
    local r vals=()
    for r in $(seq 1 "$RUNS"); do
        vals+=("$(jget "$OUT/$1-$r.json" "$2")")
    done
    median "${vals[@]}"
}
row() { # LABEL METRIC TLS DTLS
    printf '| %-36s | %-24s | %10s | %10s | %9s |\n' "$1" "$2" "$(fmt "$3")" "$(fmt "$4")" "$(ratio "$4" "$3")"
}
echo
echo "Medians of $RUNS runs. dtls/tls: for rates < 1 means DTLS is slower, for costs > 1 means DTLS costs more."
printf '| %-36s | %-24s | %10s | %10s | %9s |\n' case metric tls dtls dtls/tls
printf '|%s|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..38})" "$(printf -- '-%.0s' {1..26})" \
    "$(printf -- '-%.0s' {1..12})" "$(printf -- '-%.0s' {1..12})" "$(printf -- '-%.0s' {1..11})"
for c in "${cases[@]}"; do
    IFS='|' read -r id label transports args <<< "$c"
    want_case "$id" || continue
    unit="req/s"
    cunit="server CPU us/req"
    case $id in
        hs* | res*) unit="handshakes/s"; cunit="server CPU us/handshake" ;;
    esac
    d_rate="" d_cpu="" d_res=""
    if [ "$transports" = "tls dtls" ]; then
        d_rate=$(med "$id-dtls" "j['ops_per_s']")
        d_cpu=$(med "$id-dtls" "j['server']['cpu_us_per_op']")
        d_res=$(med "$id-dtls" "j['resumed_ratio'] * 100")
    fi
    row "$label" "$unit" "$(med "$id-tls" "j['ops_per_s']")" "$d_rate"
    row "" "$cunit" "$(med "$id-tls" "j['server']['cpu_us_per_op']")" "$d_cpu"
    case $id in
        res*) row "" "resumed %" "$(med "$id-tls" "j['resumed_ratio'] * 100")" "$d_res" ;;
    esac
done
if [ "$IDLE_CONNS" -gt 0 ]; then
    row "$IDLE_CONNS idle connections/sessions" "server RSS bytes/conn" \
        "$(med idle-tls "j['server']['rss_per_conn_bytes']")" "$(med idle-dtls "j['server']['rss_per_conn_bytes']")"
fi
if [ "$HELLOS" -gt 0 ]; then
    vals=()
    for r in $(seq 1 "$RUNS"); do
        vals+=("$(sed -n 's/us_per_hello=//p' "$OUT/hellos-$r.txt" 2> /dev/null)")
    done
    row "$HELLOS cookie-less ClientHellos" "server CPU us/hello" "" "$(median "${vals[@]}")"
fi
