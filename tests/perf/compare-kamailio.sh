#!/usr/bin/env bash
# siptls serve vs Kamailio 5.6 (tls module on OpenSSL), side by side, on
# loopback, with the same load generator (siptls bench) and the same test
# certificate (ECDSA P-256, CN=localhost). Run by hand, not by CI.
#
#   tests/perf/compare-kamailio.sh [BUILD_DIR]        (default: ./build)
#
# Environment (defaults in brackets):
#   RUNS [3]            runs per case and server; the table shows medians
#   DURATION [10]       seconds measured per run
#   WARMUP [1]          seconds of traffic before measuring
#   HS_CONNS [8]        concurrent connections in the handshake cases
#   IDLE_CONNS [10000]  connections held in the idle case (0 = skip it)
#   IDLE_HOLD [10]      seconds the idle connections are held
#   SERVER_CPU [0]      CPU both servers are pinned to (taskset)
#   BENCH_CPU [1]       CPU the load generator is pinned to
#   SIPTLS_PORT, KAM_PORT [free ports from 25061 up]
#   OUT [a new temp dir] where the raw JSON of every run is kept
#
# Kamailio and its TLS module are installed from Debian when missing
# (apt-get install -y kamailio kamailio-tls-modules); when that fails,
# siptls is measured alone and the table says so.
#
# Kamailio: one TLS worker (tcp_children=1), TLSF memory manager (-x tlsf),
# stateless 200 to OPTIONS (sl_send_reply), session cache on (TLS 1.2
# resumption), OpenSSL's default TLS 1.3 tickets; its CPU is the sum over
# all its processes, its memory the summed PSS of all its processes (its
# shared memory in use, from `kamcmd core.shmmem`, is shown separately).
#
# Every process started here is stopped by pid on exit; every step is
# bounded by `timeout`.
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
SERVER_CPU=${SERVER_CPU:-0}
BENCH_CPU=${BENCH_CPU:-1}
SIPTLS_PORT=${SIPTLS_PORT:-}
KAM_PORT=${KAM_PORT:-}
OUT=${OUT:-$(mktemp -d /tmp/siptls-vs-kamailio.XXXXXX)}
mkdir -p "$OUT"
work=$(mktemp -d)
trap 'perf_cleanup; rm -rf "$work"' EXIT
trap 'exit 130' INT TERM

# Ports: as given, else free ones (a port some other process still holds,
# even in TIME_WAIT, makes Kamailio's bind fail).
[ -n "$KAM_PORT" ] || KAM_PORT=$(free_port 25061)
[ -n "$SIPTLS_PORT" ] || SIPTLS_PORT=$(free_port $((KAM_PORT + 1)))

[ -x "$bin" ] || { echo "no $bin: build first (cmake -S . -B build && cmake --build build)"; exit 2; }
pki=$build/pki
[ -f "$pki/server.pem" ] || timeout 120 bash "$src/tests/certs/make-test-pki.sh" "$pki" > /dev/null ||
    { echo "cannot make the test PKI"; exit 1; }

# Open files: both servers and the load generator hold IDLE_CONNS sockets.
ulimit -n "$(ulimit -Hn)" 2> /dev/null
nofile=$(ulimit -n)
if [ "$IDLE_CONNS" -gt 0 ] && [ "$nofile" -lt $((IDLE_CONNS + 200)) ]; then
    echo "open-file limit $nofile is too low for $IDLE_CONNS connections; using $((nofile - 200))"
    echo "(raise it with: ulimit -n N as root, or prlimit --nofile=N:N -- $0)"
    IDLE_CONNS=$((nofile - 200))
fi

# ---- Kamailio -------------------------------------------------------------
have_kam=1
kam_note=""
if ! command -v kamailio > /dev/null || ! ls /usr/lib/*/kamailio/modules/tls.so > /dev/null 2>&1; then
    echo "installing kamailio + kamailio-tls-modules from Debian ..."
    if ! DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y --no-install-recommends \
        kamailio kamailio-tls-modules > "$work/apt.log" 2>&1; then
        have_kam=0
        kam_note="Kamailio could not be installed (apt-get failed, see below): siptls measured alone"
        tail -5 "$work/apt.log"
    fi
fi
kam_mods=$(dirname "$(ls /usr/lib/*/kamailio/modules/tls.so 2> /dev/null | head -n1)" 2> /dev/null)
[ -n "$kam_mods" ] || { have_kam=0; kam_note=${kam_note:-"no Kamailio tls module: siptls measured alone"}; }
[ $have_kam = 1 ] && kam_version=$(kamailio -v 2> /dev/null | sed -n 's/^version: //p' | head -n1)

max_conns=$((IDLE_CONNS + 1000))
cat > "$work/tls.cfg" << EOF
[server:default]
method = TLSv1.2+
verify_certificate = no
require_certificate = no
private_key = $pki/server.key
certificate = $pki/server.pem

[client:default]
verify_certificate = no
require_certificate = no
EOF
cat > "$work/kamailio.cfg" << EOF
#!KAMAILIO
debug=1
log_stderror=yes
children=1
tcp_children=1
disable_tcp=no
enable_tls=yes
listen=tls:127.0.0.1:$KAM_PORT
tcp_max_connections=$max_conns
tls_max_connections=$max_conns
tcp_connection_lifetime=3605
open_files_limit=$nofile
auto_aliases=no
mpath="$kam_mods/"
loadmodule "tls.so"
loadmodule "sl.so"
loadmodule "ctl.so"
modparam("tls", "config", "$work/tls.cfg")
modparam("tls", "session_cache", 1)
modparam("tls", "connection_timeout", 3605)
modparam("ctl", "binrpc", "unix:$work/kamailio_ctl")
request_route {
    if (method == "OPTIONS") {
        sl_send_reply("200", "OK");
        exit;
    }
    sl_send_reply("501", "Not Implemented");
}
EOF

cat > "$work/siptls.conf" << EOF
tls_max_connections = $max_conns
tls_connection_lifetime = 3600
EOF

# Longest a server may live (every case, every run, plus margins).
server_life=$(awk -v r="$RUNS" -v d="$DURATION" -v w="$WARMUP" -v n="$IDLE_CONNS" -v h="$IDLE_HOLD" \
    'BEGIN {printf "%d", r * 6 * 2 * (d + w + 30) + r * 2 * (h + 120 + n / 50) + 600}')

# siptls_pid / kam_pid: the servers themselves (for /proc); *_wrap: the
# `timeout` processes they run under (what we stop).
siptls_pid="" siptls_wrap=""
kam_pid="" kam_wrap=""
start_siptls() {
    : > "$work/siptls.out"
    (exec taskset -c "$SERVER_CPU" timeout -s TERM "$server_life" "$bin" serve -c "$work/siptls.conf" -q \
        --listen "tls:127.0.0.1:$SIPTLS_PORT" --cert "$pki/server.pem" --key "$pki/server.key" \
        > "$work/siptls.out" 2> "$work/siptls.err") &
    siptls_wrap=$!
    PERF_STARTED+=("$siptls_wrap")
    wait_ready "$work/siptls.out" "ready on" 10 && siptls_pid=$(perf_child "$siptls_wrap" 5) ||
        { echo "siptls serve did not start:"; cat "$work/siptls.err"; exit 1; }
}
stop_siptls() {
    [ -n "$siptls_wrap" ] && perf_stop "$siptls_wrap"
    siptls_pid="" siptls_wrap=""
}
start_kamailio() {
    [ $have_kam = 1 ] || return 0
    rm -f "$work/kamailio_ctl"
    (exec taskset -c "$SERVER_CPU" timeout -s TERM "$server_life" kamailio -f "$work/kamailio.cfg" \
        -DD -E -m 2048 -M 64 -x tlsf -P "$work/kamailio.pid" -Y "$work" > "$work/kamailio.log" 2>&1) &
    kam_wrap=$!
    PERF_STARTED+=("$kam_wrap")
    if ! wait_port "$KAM_PORT" 15 || ! kam_pid=$(perf_child "$kam_wrap" 5); then
        if [ "${1:-}" != retry ] && grep -q "Address already in use" "$work/kamailio.log"; then
            # Taken since we looked: once more on another port.
            stop_kamailio
            local old=$KAM_PORT
            KAM_PORT=$(free_port $((KAM_PORT + 2)))
            sed -i "s/^listen=tls:127.0.0.1:$old\$/listen=tls:127.0.0.1:$KAM_PORT/" "$work/kamailio.cfg"
            echo "port $old is busy: Kamailio on $KAM_PORT"
            start_kamailio retry
            return 0
        fi
        echo "kamailio did not start:"
        tail -20 "$work/kamailio.log"
        have_kam=0
        kam_note="Kamailio did not start (see its log): siptls measured alone"
        stop_kamailio
        return 0
    fi
    sleep 1 # its worker processes
}
stop_kamailio() {
    [ -n "$kam_wrap" ] && perf_stop "$kam_wrap"
    kam_pid="" kam_wrap=""
}
kam_shm_used() {
    timeout 10 kamcmd -s "unix:$work/kamailio_ctl" core.shmmem 2> /dev/null | awk '$1 == "used:" {print $2}'
}

# bench_run SERVER NAME ARGS...: one run; the JSON goes to $OUT/NAME.json
bench_run() {
    local server=$1 name=$2 uri pids
    shift 2
    if [ "$server" = siptls ]; then
        uri="tls:127.0.0.1:$SIPTLS_PORT"
        pids=$siptls_pid
    else
        uri="tls:127.0.0.1:$KAM_PORT"
        pids=$(pid_list "$kam_pid")
    fi
    timeout "$(awk -v d="$DURATION" -v w="$WARMUP" 'BEGIN {printf "%d", d + w + 60}')" taskset -c "$BENCH_CPU" "$bin" bench "$uri" --ca "$pki/ca.pem" \
        --server-pid "$pids" --json "$@" > "$OUT/$name.json" 2> "$OUT/$name.err"
    local rc=$?
    printf '  %-28s %-9s rc=%d  %s/s  server %s us/op  %s %s  errors %s\n' "$name" "$server" "$rc" \
        "$(fmt "$(jget "$OUT/$name.json" "j['ops_per_s']")")" \
        "$(fmt "$(jget "$OUT/$name.json" "j['server']['cpu_us_per_op']")")" \
        "$(jget "$OUT/$name.json" "j['tls_version']")" "$(jget "$OUT/$name.json" "j['cipher']")" \
        "$(jget "$OUT/$name.json" "j['errors']['total']")"
}

servers=(siptls)
[ $have_kam = 1 ] && servers+=(kamailio)

echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs; servers on CPU $SERVER_CPU, bench on CPU $BENCH_CPU"
echo "siptls: $("$bin" --version | head -n1)"
[ $have_kam = 1 ] && echo "kamailio: $kam_version (OpenSSL $(openssl version 2> /dev/null | awk '{print $2}'))"
[ -n "$kam_note" ] && echo "NOTE: $kam_note"
echo "raw results: $OUT"

start_siptls
start_kamailio
[ $have_kam = 1 ] || servers=(siptls)

# case id | label | bench arguments
cases=(
    "msgs1|OPTIONS, 1 conn x 10 in flight|--mode msgs -C 1 -w 10"
    "msgs50|OPTIONS, 50 conns x 10 in flight|--mode msgs -C 50 -w 10"
    "hs12|full handshake TLS 1.2|--mode handshakes --tls 1.2 -C $HS_CONNS"
    "hs13|full handshake TLS 1.3|--mode handshakes --tls 1.3 -C $HS_CONNS"
    "res12|resumption TLS 1.2|--mode resume --tls 1.2 -C $HS_CONNS"
    "res13|resumption TLS 1.3|--mode resume --tls 1.3 -C $HS_CONNS"
)
for c in "${cases[@]}"; do
    IFS='|' read -r id label args <<< "$c"
    echo "== $label"
    for run in $(seq 1 "$RUNS"); do
        for s in "${servers[@]}"; do
            # shellcheck disable=SC2086
            bench_run "$s" "$id-$s-$run" $args -d "$DURATION" --warmup "$WARMUP"
        done
    done
done

# Idle connections: fresh servers, memory before and while the connections
# are held (PSS summed over the server's processes).
idle_run() { # SERVER RUN
    local s=$1 run=$2 name="idle-$1-$2" pids port before after shm0="" shm1="" bpid
    if [ "$s" = siptls ]; then
        stop_siptls
        start_siptls
        pids=$siptls_pid
        port=$SIPTLS_PORT
    else
        stop_kamailio
        start_kamailio
        [ $have_kam = 1 ] || return 0
        pids=$(pid_list "$kam_pid")
        port=$KAM_PORT
        shm0=$(kam_shm_used)
    fi
    # one connection first, so one-time allocations are not counted per connection
    timeout 10 "$bin" ping "tls:127.0.0.1:$port" --ca "$pki/ca.pem" > /dev/null 2>&1
    sleep 0.5
    before=$(pss_kib "$pids")
    timeout $((IDLE_HOLD + 30 + IDLE_CONNS / 50 + 60)) taskset -c "$BENCH_CPU" "$bin" bench \
        "tls:127.0.0.1:$port" --ca "$pki/ca.pem" --mode idle -C "$IDLE_CONNS" -d "$IDLE_HOLD" \
        --rss-pid "${pids%%,*}" --json > "$OUT/$name.json" 2> "$OUT/$name.err" &
    bpid=$!
    PERF_STARTED+=("$bpid")
    for _ in $(seq 1 $((30 + IDLE_CONNS / 50))); do
        [ "$(tls_established "$port")" -ge "$IDLE_CONNS" ] && break
        kill -0 "$bpid" 2> /dev/null || break
        sleep 1
    done
    sleep 2
    after=$(pss_kib "$pids")
    [ "$s" = kamailio ] && shm1=$(kam_shm_used)
    local est
    est=$(tls_established "$port")
    wait "$bpid"
    perf_forget "$bpid"
    local up
    up=$(jget "$OUT/$name.json" "j['connections_up']")
    [ -n "$up" ] && [ "$up" -gt 0 ] || up=$est
    {
        echo "pss_before_kib=$before pss_after_kib=$after established=$est up=$up"
        echo "pss_per_conn_bytes=$(awk -v a="$after" -v b="$before" -v n="$up" 'BEGIN {if (n > 0) printf "%.0f", (a - b) * 1024 / n}')"
        [ -n "$shm0" ] && echo "shm_per_conn_bytes=$(awk -v a="$shm1" -v b="$shm0" -v n="$up" 'BEGIN {if (n > 0) printf "%.0f", (a - b) / n}')"
    } > "$OUT/$name.mem"
    printf '  %-28s %-9s %s conns up, PSS %s -> %s KiB: %s bytes/conn%s\n' "$name" "$s" "$up" "$before" "$after" \
        "$(sed -n 's/pss_per_conn_bytes=//p' "$OUT/$name.mem")" \
        "$([ -n "$shm0" ] && echo ", shm used +$(sed -n 's/shm_per_conn_bytes=//p' "$OUT/$name.mem") bytes/conn")"
}
if [ "$IDLE_CONNS" -gt 0 ]; then
    echo "== $IDLE_CONNS idle TLS connections"
    for run in $(seq 1 "$RUNS"); do
        for s in "${servers[@]}"; do
            idle_run "$s" "$run"
        done
    done
fi
stop_siptls
stop_kamailio

# ---- table ------------------------------------------------------------------
med() { # ID SERVER EXPR
    local r vals=()
    for r in $(seq 1 "$RUNS"); do
        vals+=("$(jget "$OUT/$1-$2-$r.json" "$3")")
    done
    median "${vals[@]}"
}
medmem() { # SERVER KEY
    local r vals=()
    for r in $(seq 1 "$RUNS"); do
        vals+=("$(sed -n "s/^$2=//p" "$OUT/idle-$1-$r.mem" 2> /dev/null)")
    done
    median "${vals[@]}"
}
row() { # LABEL METRIC SIPTLS KAM
    printf '| %-34s | %-22s | %12s | %12s | %14s |\n' "$1" "$2" "$(fmt "$3")" "$(fmt "$4")" "$(ratio "$3" "$4")"
}
echo
echo "Medians of $RUNS runs; siptls/Kamailio > 1 means siptls is higher (better for rates, worse for costs)."
[ -n "$kam_note" ] && echo "NOTE: $kam_note"
printf '| %-34s | %-22s | %12s | %12s | %14s |\n' case metric siptls Kamailio siptls/Kamailio
printf '|%s|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..36})" "$(printf -- '-%.0s' {1..24})" \
    "$(printf -- '-%.0s' {1..14})" "$(printf -- '-%.0s' {1..14})" "$(printf -- '-%.0s' {1..16})"
for c in "${cases[@]}"; do
    IFS='|' read -r id label args <<< "$c"
    unit="req/s"
    cunit="server CPU us/req"
    case $id in
        hs* | res*) unit="handshakes/s"; cunit="server CPU us/handshake" ;;
    esac
    k_rate="" k_cpu="" k_res=""
    if [ $have_kam = 1 ]; then
        k_rate=$(med "$id" kamailio "j['ops_per_s']")
        k_cpu=$(med "$id" kamailio "j['server']['cpu_us_per_op']")
        k_res=$(med "$id" kamailio "j['resumed_ratio'] * 100")
    fi
    row "$label" "$unit" "$(med "$id" siptls "j['ops_per_s']")" "$k_rate"
    row "" "$cunit" "$(med "$id" siptls "j['server']['cpu_us_per_op']")" "$k_cpu"
    case $id in
        res*) row "" "resumed %" "$(med "$id" siptls "j['resumed_ratio'] * 100")" "$k_res" ;;
    esac
done
if [ "$IDLE_CONNS" -gt 0 ]; then
    k_pss="" k_shm=""
    if [ $have_kam = 1 ]; then
        k_pss=$(medmem kamailio pss_per_conn_bytes)
        k_shm=$(medmem kamailio shm_per_conn_bytes)
    fi
    row "$IDLE_CONNS idle TLS connections" "memory bytes/conn (PSS)" "$(medmem siptls pss_per_conn_bytes)" "$k_pss"
    row "" "of which Kamailio shm" "" "$k_shm"
fi
echo
echo "negotiated (first run of each case):"
for c in "${cases[@]}"; do
    IFS='|' read -r id label args <<< "$c"
    for s in "${servers[@]}"; do
        printf '  %-34s %-9s %s %s\n' "$label" "$s" "$(jget "$OUT/$id-$s-1.json" "j['tls_version']")" \
            "$(jget "$OUT/$id-$s-1.json" "j['cipher']")"
    done
done
