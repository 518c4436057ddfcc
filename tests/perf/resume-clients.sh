#!/usr/bin/env bash
# Resumption for thousands of clients (issue 10 item 4; docs/benchmarks.md):
# N distinct clients (tests/perf/resume_clients.c) each make one full
# handshake with `siptls serve`, then each resumes once; printed: how many
# resumed, per protocol. A benchmark, run by hand (not by CI):
#
#   tests/perf/resume-clients.sh BUILD_DIR [N] [MODES...]
#
# BUILD_DIR: a configured and built siptls build folder (its siptls binary
# and the wolfSSL it links: bundled or system, from its CMakeCache.txt).
# N: clients per mode (default 10000). MODES: tls12 tls12-ticket tls13
# dtls12 (default: all). One server per mode, fresh (empty session cache),
# pinned to CPU 0 and the clients to CPU 1 when there are two CPUs. Every
# process runs under `timeout`; only our own pids are stopped.
set -u
build=$(cd "${1:?usage: resume-clients.sh BUILD_DIR [N] [MODES...]}" && pwd)
n=${2:-10000}
shift $(($# >= 2 ? 2 : 1))
modes=("$@")
((${#modes[@]})) || modes=(tls12 tls12-ticket tls13 dtls12)
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bin=$build/siptls pki=$build/pki
[ -x "$bin" ] || { echo "no $bin" >&2; exit 1; }
cache_get() { sed -n "s/^$1:[A-Z]*=//p" "$build/CMakeCache.txt" | head -n1; }
inc=$(cache_get SIPTLS_WOLFSSL_INCLUDE_DIR)
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; rm -rf "$work"; }
trap cleanup EXIT

# The client against the same wolfSSL as siptls.
if [ "$(cache_get SIPTLS_WOLFSSL)" = system ]; then
    libs=$(pkg-config --libs wolfssl)
else
    libs="${inc%/include}/lib/libwolfssl.a -lm -lpthread"
fi
cc -O2 -I"$inc" -o "$work/resume_clients" "$src/tests/perf/resume_clients.c" $libs ||
    { echo "cannot build resume_clients" >&2; exit 1; }

pin_s=() pin_c=()
if command -v taskset > /dev/null && (($(nproc) >= 2)); then
    pin_s=(taskset -c 0) pin_c=(taskset -c 1)
fi
echo "siptls: $("$bin" --version | head -n1); N=$n; $(nproc) CPUs"
status=0
for mode in "${modes[@]}"; do
    scheme=tls
    [ "$mode" = dtls12 ] && scheme=dtls
    # no per-address handshake rate limit (all clients are 127.0.0.1)
    printf 'dtls_handshake_rate = 0\n' > "$work/serve.conf"
    timeout 1800 "${pin_s[@]}" "$bin" serve -c "$work/serve.conf" --listen "$scheme:127.0.0.1:0" \
        --cert "$pki/server.pem" --key "$pki/server.key" -q > "$work/serve.out" 2> "$work/serve.err" &
    spid=$!
    pids+=("$spid")
    port=
    for _ in $(seq 1 200); do
        port=$(sed -n "s/.*ready on $scheme:.* port \([0-9]*\).*/\1/p" "$work/serve.out" | head -n1)
        [ -n "$port" ] && break
        sleep 0.05
    done
    [ -n "$port" ] || { echo "serve did not start: $(cat "$work/serve.err")"; exit 1; }
    timeout 1200 "${pin_c[@]}" "$work/resume_clients" 127.0.0.1 "$port" "$mode" "$n" || status=1
    kill "$spid" 2>/dev/null
    wait "$spid" 2>/dev/null
    pids=()
done
exit "$status"
