# shellcheck shell=bash disable=SC2154 # $work is the caller's
# Helpers for the shell tests (bash; sourced, not run). Every wait here
# checks a state and is bounded in time (by the clock, not by a count of
# polls, which a loaded machine stretches); nothing sleeps a guessed
# duration and then asserts. The polling interval (50 ms) only sets how
# soon a wait notices the state. Only tools that scripts/test.sh installs
# are used (coreutils, grep, sed, awk, iproute2's ss, openssl, gnutls-bin,
# jq).
#
# The caller sets $work (its private temporary folder) before converse().

# need TOOL...: fail (exit 1) when a tool is missing. scripts/test.sh
# installs every tool a test uses, so a missing one is a broken set-up,
# never a reason to skip.
need() {
    local t
    for t in "$@"; do
        command -v "$t" > /dev/null || { echo "FAIL $t is not installed (scripts/test.sh installs it)"; exit 1; }
    done
}

# alive PID: is PID still running (not a zombie)?
alive() {
    local st
    [ -n "$1" ] && read -r st 2> /dev/null < "/proc/$1/stat" && [[ $st != *") Z "* ]]
}

# wait_match PATTERN FILE [SECONDS [PID]]: until a line of FILE matches the
# grep pattern (0), or SECONDS pass (default 20), or PID is gone without a
# match (1).
wait_match() {
    local pat=$1 file=$2 end=$((SECONDS + ${3:-20})) pid=${4:-}
    while :; do
        grep -aq -- "$pat" "$file" 2> /dev/null && return 0
        if [ -n "$pid" ] && ! alive "$pid"; then
            grep -aq -- "$pat" "$file" 2> /dev/null
            return
        fi
        ((SECONDS < end)) || return 1
        sleep 0.05
    done
}

# serve_port FILE SCHEME [PID [SECONDS]]: print the port of the first
# "ready on SCHEME:... port N" line that `siptls serve` writes to FILE
# (stdout) once it listens; 1 when PID ends first or SECONDS (20) pass.
serve_port() {
    local file=$1 scheme=$2 pid=${3:-} end=$((SECONDS + ${4:-20})) p
    while :; do
        p=$(sed -n "s/.*ready on $scheme:.* port \([0-9]*\).*/\1/p" "$file" 2> /dev/null | head -n1)
        [ -n "$p" ] && { echo "$p"; return 0; }
        if [ -n "$pid" ] && ! alive "$pid"; then
            return 1
        fi
        ((SECONDS < end)) || return 1
        sleep 0.05
    done
}

# accept_port FILE [PID [SECONDS]]: the port of `openssl s_server -accept
# HOST:0`, from its "ACCEPT HOST:PORT" line (printed without -quiet).
accept_port() {
    local file=$1 pid=${2:-} end=$((SECONDS + ${3:-20})) p
    while :; do
        p=$(sed -n 's/^ACCEPT .*:\([0-9][0-9]*\)$/\1/p' "$file" 2> /dev/null | head -n1)
        [ -n "$p" ] && { echo "$p"; return 0; }
        if [ -n "$pid" ] && ! alive "$pid"; then
            return 1
        fi
        ((SECONDS < end)) || return 1
        sleep 0.05
    done
}

# udp4_port_of_child PARENT NAME [SECONDS]: the IPv4 UDP port that the
# process NAME, a child of PARENT (e.g. `timeout`), has bound (read with
# ss). For servers that bind port 0 but print "port 0" (gnutls-serv).
udp4_port_of_child() {
    local parent=$1 name=$2 end=$((SECONDS + ${3:-20})) line addr pid ppid
    while :; do
        while read -r line; do
            addr=$(awk '{print $4}' <<< "$line")
            case $addr in 0.0.0.0:* | 127.0.0.1:*) ;; *) continue ;; esac
            pid=$(sed -n "s/.*\"$name\",pid=\([0-9]*\),.*/\1/p" <<< "$line")
            [ -n "$pid" ] || continue
            ppid=$(awk '/^PPid:/ {print $2}' "/proc/$pid/status" 2> /dev/null)
            if [ "$ppid" = "$parent" ]; then
                echo "${addr##*:}"
                return 0
            fi
        done < <(ss -Hlunp 2> /dev/null)
        alive "$parent" || return 1
        ((SECONDS < end)) || return 1
        sleep 0.05
    done
}

# converse OUT DATA PATTERN CMD...: run CMD (which bounds itself, e.g.
# under `timeout`) with DATA on its stdin, stdout to OUT and stderr to
# OUT.err. Its stdin stays open until OUT has a line matching PATTERN (up
# to 20 s, or until CMD ends), then is closed: CMD sees the end of its
# input only once the answer it waits for is in. Returns CMD's status.
converse() {
    local out=$1 data=$2 pat=$3 fifo fd pid rc
    shift 3
    fifo=$(mktemp -u "$work/stdin.XXXXXX")
    mkfifo "$fifo"
    "$@" < "$fifo" > "$out" 2> "$out.err" &
    pid=$!
    exec {fd}> "$fifo"
    # in a subshell: a CMD that has ended already must not take this shell
    # down with SIGPIPE
    (printf '%s' "$data" >&"$fd") 2> /dev/null
    wait_match "$pat" "$out" 20 "$pid"
    exec {fd}>&-
    wait "$pid"
    rc=$?
    rm -f "$fifo"
    return $rc
}

# shtest_start: the common start of a CLI test. A private folder $work,
# removed on exit together with the `siptls serve` whose pid the test keeps
# in $serve_pid (continued first, should the test have stopped it); the
# counters that ok and bad keep and shtest_report reports.
shtest_start() {
    work=$(mktemp -d)
    serve_pid=
    fails=0 passes=0
    trap shtest_cleanup EXIT
}
shtest_cleanup() {
    if [ -n "$serve_pid" ]; then
        kill -CONT "$serve_pid" 2> /dev/null
        kill "$serve_pid" 2> /dev/null && wait "$serve_pid" 2> /dev/null
    fi
    rm -rf "$work"
}
ok() { passes=$((passes + 1)); echo "ok   $1"; }
bad() { fails=$((fails + 1)); echo "FAIL $1"; }
