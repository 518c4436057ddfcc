#!/usr/bin/env bash
# Where the server's time goes under one load: `siptls serve` (tls: and
# dtls: listeners) pinned to one CPU, `siptls bench` on the other, and
# either `perf record` or `strace -c` attached to the server in the middle
# of the run. Run by hand, as root (perf, strace), not by CI.
#
#   tests/perf/profile-server.sh [BUILD_DIR] perf|strace tls|dtls BENCH-ARGS...
#   e.g. tests/perf/profile-server.sh build perf tls --mode resume --tls 1.2 -C 8
#
# perf: prints the top entries of the flat profile. Debian's libwolfssl has
# no symbols for its internal functions: their samples are summed per
# "~NAME", NAME being the exported symbol just before the address (a hint
# where in wolfSSL it is, not the function's name: e.g. "~wc_RNG_GenerateByte"
# is the SHA-256 transform). The raw data stays in $OUT/perf.data.
# strace: system calls of the server per operation (the server's own counters
# of handshakes or messages over the traced window).
#
# Environment: SECONDS_PROFILED [6], SERVER_CPU [0], BENCH_CPU [1], TOP [25],
# OUT [a new temp dir].
set -u
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
build=$src/build
if [ $# -gt 0 ] && [ -d "$1" ]; then
    build=$1
    shift
fi
[ $# -ge 2 ] || { sed -n '2,20p' "$0"; exit 2; }
tool=$1 scheme=$2
shift 2
bin=$build/siptls
# shellcheck source=tests/perf/lib.sh
. "$here/lib.sh"
SECS=${SECONDS_PROFILED:-6}
SERVER_CPU=${SERVER_CPU:-0}
BENCH_CPU=${BENCH_CPU:-1}
TOP=${TOP:-25}
OUT=${OUT:-$(mktemp -d /tmp/siptls-profile.XXXXXX)}
mkdir -p "$OUT"
trap 'perf_cleanup' EXIT
trap 'exit 130' INT TERM
[ -x "$bin" ] || { echo "no $bin"; exit 2; }
case $tool in perf | strace) ;; *) echo "tool: perf or strace"; exit 2 ;; esac
command -v "$tool" > /dev/null || { echo "$tool is not installed"; exit 2; }
pki=$build/pki
[ -f "$pki/server.pem" ] || timeout 120 bash "$src/tests/certs/make-test-pki.sh" "$pki" > /dev/null ||
    { echo "cannot make the test PKI"; exit 1; }

printf 'dtls_handshake_rate = 0\ntls_max_connections = 20000\ndtls_max_sessions = 20000\n' > "$OUT/serve.conf"
(exec taskset -c "$SERVER_CPU" timeout $((SECS + 120)) "$bin" serve -c "$OUT/serve.conf" -q \
    --listen tls:127.0.0.1:0 --listen dtls:127.0.0.1:0 --cert "$pki/server.pem" --key "$pki/server.key" \
    > "$OUT/serve.out" 2> "$OUT/serve.err") &
wrap=$!
PERF_STARTED+=("$wrap")
wait_ready "$OUT/serve.out" "ready on dtls" 10 && srv=$(perf_child "$wrap" 5) ||
    { echo "siptls serve did not start"; cat "$OUT/serve.err"; exit 1; }
port=$(sed -n "s/.*ready on $scheme:.* port \([0-9]*\).*/\1/p" "$OUT/serve.out" | head -n1)

timeout $((SECS + 60)) taskset -c "$BENCH_CPU" "$bin" bench "$scheme:127.0.0.1:$port" --ca "$pki/ca.pem" \
    --server-pid "$srv" -d $((SECS + 4)) "$@" > "$OUT/bench.out" 2>&1 &
bpid=$!
PERF_STARTED+=("$bpid")
sleep 2
if [ "$tool" = perf ]; then
    timeout $((SECS + 30)) perf record -F 4999 -g -o "$OUT/perf.data" -p "$srv" -- sleep "$SECS" > /dev/null 2>&1
else
    # The server's own counters before and after say how many operations
    # the traced window held (strace slows the server down).
    kill -USR1 "$srv"
    timeout $((SECS + 30)) strace -c -f -o "$OUT/strace.txt" -p "$srv" > /dev/null 2>&1 &
    spid=$!
    sleep "$SECS"
    kill -USR1 "$srv"
    kill -INT "$spid" 2> /dev/null
    wait "$spid"
    sleep 0.2
fi
wait "$bpid"
perf_forget "$bpid"
cat "$OUT/bench.out"

if [ "$tool" = perf ]; then
    lib=$(awk '/libwolfssl/ {print $NF; exit}' "/proc/$srv/maps" 2> /dev/null)
    [ -n "$lib" ] || lib=$(ldconfig -p | awk '/libwolfssl.so/ {print $NF; exit}')
    nm -D --defined-only "$lib" | awk '{print $1, $3}' | sort > "$OUT/wolfssl.syms"
    perf report -i "$OUT/perf.data" --stdio --no-children --sort dso,sym -g none 2> /dev/null > "$OUT/report.txt"
    "$PY" - "$OUT/wolfssl.syms" "$OUT/report.txt" "$TOP" << 'EOF'
import bisect, collections, re, sys
syms = sorted((int(a, 16), n) for a, n in (l.split() for l in open(sys.argv[1])))
addrs = [a for a, _ in syms]
def near(ip):
    i = bisect.bisect_right(addrs, ip) - 1
    return syms[i][1] if i >= 0 else "?"
c = collections.Counter()
for line in open(sys.argv[2]):
    m = re.match(r"\s+([\d.]+)%\s+(\S+)\s+\[(.)\]\s+(.*)$", line)
    if not m:
        continue
    pct, dso, kind, sym = float(m.group(1)), m.group(2), m.group(3), m.group(4).strip()
    if kind == "k":
        key = "kernel (all)"
    elif "libwolfssl" in dso and sym.startswith("0x"):
        key = "wolfssl ~" + near(int(sym, 16))
    else:
        key = dso.split(".so")[0] + " " + sym
    c[key] += pct
print("flat profile of the server (%), wolfSSL internals as ~<exported symbol before them>:")
for k, v in c.most_common(int(sys.argv[3])):
    print("%6.2f  %s" % (v, k))
EOF
else
    unit=msgs
    case " $* " in *" handshakes "* | *" resume "* | *" idle "*) unit=handshakes ;; esac
    echo "system calls of the server per operation ($unit counted by the server over the traced ${SECS} s):"
    "$PY" - "$OUT/strace.txt" "$OUT/serve.err" "$unit" << 'EOF'
import re, sys
key = r"handshakes ok (\d+)" if sys.argv[3] == "handshakes" else r"msgs in (\d+)"
counts = [int(m.group(1)) for m in re.finditer(key, open(sys.argv[2]).read())]
ops = counts[-1] - counts[-2] if len(counts) >= 2 else 0
print("  operations: %d" % ops)
rows = []
for line in open(sys.argv[1]):
    p = line.split()
    if len(p) >= 5 and p[0][0].isdigit() and p[-1] != "total":
        calls = int(p[3])
        errors = int(p[4]) if len(p) == 6 else 0
        rows.append((calls, errors, p[-1]))
for calls, errors, name in sorted(rows, reverse=True):
    if ops > 0:
        print("  %-14s %8.2f per op  (%d calls, %d failed)" % (name, calls / ops, calls, errors))
EOF
fi
echo "raw data: $OUT"
