#!/usr/bin/env bash
# Server CPU per OPTIONS->200, two builds side by side in one run: the
# builds alternate (A B A B ...) so that whatever else the machine does
# falls on both; medians of N runs each. Run by hand (a benchmark, not a
# test):
#
#   tests/perf/before-after.sh BEFORE_REV [AFTER_REV] [RUNS]
#
# AFTER_REV defaults to the working tree's HEAD; RUNS to 5. Each revision is
# built (release, tests off) in a worktree under /tmp. The client is the
# AFTER build's `siptls bench`, the same for both. Prints one line per run
# and the medians for TLS (50 connections x 10 in flight) and DTLS (50 x 1).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
before=${1:?usage: before-after.sh BEFORE_REV [AFTER_REV] [RUNS]}
after=${2:-HEAD}
runs=${3:-5}
work=$(mktemp -d /tmp/siptls-ba.XXXXXX)
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
    git -C "$repo" worktree remove --force "$work/a" 2>/dev/null || true
    git -C "$repo" worktree remove --force "$work/b" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

build() { # rev dir
    git -C "$repo" worktree add -q --detach "$2" "$1"
    cmake -S "$2" -B "$2/build" -DCMAKE_BUILD_TYPE=Release -DSIPTLS_TESTS=OFF >/dev/null
    cmake --build "$2/build" -j "${JOBS:-2}" >/dev/null
}
build "$before" "$work/a"
build "$after" "$work/b"
bench=$work/b/build/siptls
bash "$repo/tests/certs/make-test-pki.sh" "$work/pki" >/dev/null 2>&1

# one run: serve from BUILD, bench against it, print server µs per request
one() { # build-dir scheme conns window
    local bin=$1/build/siptls out pid port cpu
    "$bin" serve -q --listen "$2:127.0.0.1:0" --cert "$work/pki/server.pem" \
        --key "$work/pki/server.key" >"$work/serve.out" 2>"$work/serve.err" &
    pid=$!
    pids+=("$pid")
    for _ in $(seq 1 200); do
        port=$(sed -n "s/.*ready on $2:.* port \([0-9]*\).*/\1/p" "$work/serve.out" | head -n1)
        [[ -n $port ]] && break
        sleep 0.05
    done
    out=$("$bench" bench "$2:127.0.0.1:$port" --ca "$work/pki/ca.pem" -C "$3" -w "$4" -d 4 \
        --warmup 1 --server-pid "$pid" --json 2>/dev/null || true)
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    cpu=$(grep '"server"' <<<"$out" | sed -n 's/.*"cpu_us_per_op": *\([0-9.]*\).*/\1/p')
    echo "${cpu:-nan}"
}

median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

for scheme in tls dtls; do
    w=10
    [[ $scheme == dtls ]] && w=1
    : >"$work/a.$scheme"
    : >"$work/b.$scheme"
    for i in $(seq 1 "$runs"); do
        a=$(one "$work/a" "$scheme" 50 "$w")
        b=$(one "$work/b" "$scheme" 50 "$w")
        echo "$scheme run $i: before $a us, after $b us"
        echo "$a" >>"$work/a.$scheme"
        echo "$b" >>"$work/b.$scheme"
    done
    ma=$(median <"$work/a.$scheme")
    mb=$(median <"$work/b.$scheme")
    echo "$scheme median server CPU per OPTIONS->200: before $ma us ($before), after $mb us ($after), after/before $(awk -v a="$ma" -v b="$mb" 'BEGIN {printf "%.2f", b / a}')"
done
