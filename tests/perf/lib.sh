# shellcheck shell=bash
# Helpers shared by the perf scripts of tests/perf (sourced, not run).
# Every process a script starts goes into PERF_STARTED (by pid) and is stopped
# by perf_cleanup (install it with `trap perf_cleanup EXIT`); servers run
# under `timeout`, so none outlives a broken run; nothing is ever stopped by
# name.

PY=$(command -v /usr/bin/python3 || command -v python3) || { echo "perf: python3 needed" >&2; exit 1; }
PERF_STARTED=()

perf_cleanup() {
    local p
    for p in "${PERF_STARTED[@]}"; do
        kill "$p" 2> /dev/null
    done
    for p in "${PERF_STARTED[@]}"; do
        wait "$p" 2> /dev/null
    done
    PERF_STARTED=()
}

# perf_forget PID: a process we started has ended (reaped by `wait`): do not
# signal its pid again (it could be reused).
perf_forget() {
    local p keep=()
    for p in "${PERF_STARTED[@]}"; do
        [ "$p" != "$1" ] && keep+=("$p")
    done
    PERF_STARTED=("${keep[@]}")
}

# perf_stop PID: stop one process we started and forget it.
perf_stop() {
    kill "$1" 2> /dev/null
    wait "$1" 2> /dev/null
    perf_forget "$1"
}

# perf_child PID SECONDS: the first child of PID (a server started under
# `timeout`), waiting for it up to SECONDS.
perf_child() {
    local c
    for _ in $(seq 1 $(($2 * 20))); do
        c=$(child_pids "$1" | head -n1)
        [ -n "$c" ] && { echo "$c"; return 0; }
        sleep 0.05
    done
    return 1
}

# child_pids PID: the direct children of PID, one per line.
child_pids() {
    ps -o pid= --ppid "$1" | tr -d ' '
}

# pid_list PID: PID and its children, comma-separated (for --server-pid).
pid_list() {
    local l=$1 c
    for c in $(child_pids "$1"); do
        l="$l,$c"
    done
    echo "$l"
}

# pss_kib PID[,PID...]: summed proportional set size in KiB (shared pages are
# split between the processes that map them, so a sum over processes is the
# physical memory they use together).
pss_kib() {
    local sum=0 p v
    for p in ${1//,/ }; do
        v=$(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2> /dev/null)
        sum=$((sum + ${v:-0}))
    done
    echo "$sum"
}

# tls_established PORT: established TCP connections whose local port is PORT.
tls_established() {
    ss -Htn state established "( sport = :$1 )" 2> /dev/null | wc -l
}

# jget FILE EXPR: a python expression over `j`, the JSON in FILE ("" on error).
jget() {
    "$PY" -c 'import json,sys
try:
    j = json.load(open(sys.argv[1]))
    v = eval(sys.argv[2])
    print("" if v is None else v)
except Exception:
    print("")' "$1" "$2"
}

# median VALUES...: the median of numbers (empty values are ignored).
median() {
    printf '%s\n' "$@" | awk 'NF && $1 != "" {print $1}' | sort -g |
        awk '{a[NR] = $1} END {if (NR == 0) print ""; else if (NR % 2) print a[(NR + 1) / 2]; else printf "%.6g\n", (a[NR / 2] + a[NR / 2 + 1]) / 2}'
}

# ratio A B: A/B with 2 decimals, "-" when either is missing.
ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN {if (a == "" || b == "" || b + 0 == 0) print "-"; else printf "%.2f\n", a / b}'
}

# fmt VALUE: a number rounded for the table, "-" when missing.
fmt() {
    awk -v v="$1" 'BEGIN {if (v == "") print "-"; else if (v + 0 >= 100) printf "%.0f\n", v; else if (v + 0 >= 10) printf "%.1f\n", v; else printf "%.2f\n", v}'
}

# free_port FROM: the first TCP port from FROM up that no socket uses in any
# state (listening, connected, TIME_WAIT).
free_port() {
    local p=$1
    while ss -Htan "( sport = :$p )" 2> /dev/null | grep -q .; do
        p=$((p + 1))
    done
    echo "$p"
}

# wait_ready FILE PATTERN SECONDS: wait until FILE has a line matching PATTERN.
wait_ready() {
    for _ in $(seq 1 $(($3 * 20))); do
        grep -q "$2" "$1" 2> /dev/null && return 0
        sleep 0.05
    done
    return 1
}

# wait_port PORT SECONDS: wait until something listens on TCP PORT.
wait_port() {
    for _ in $(seq 1 $(($2 * 20))); do
        ss -Htln "( sport = :$1 )" 2> /dev/null | grep -q . && return 0
        sleep 0.05
    done
    return 1
}
