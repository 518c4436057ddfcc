#!/usr/bin/env bash
# siptls — THE test command (README "Test").
#
#   ./scripts/test.sh
#
# 1. installs the Debian 12 packages it needs when one is missing
#    (apt-get, through sudo when not root);
# 2. coverage build (gcc, -Werror, --coverage) in build/coverage and
#    `ctest --output-on-failure -j2` over every label except fuzz
#    (unit, integration, interop);
# 3. when clang is present: a clang build with -DSIPTLS_FUZZ=ON in build/fuzz
#    and `ctest -L fuzz` there (short bounded libFuzzer runs);
# 4. the coverage gate (coverage/gate.sh; threshold in coverage/threshold).
#
# Exits non-zero when any step fails; the last line is a summary. Safe to
# run again: build folders are reused and coverage counters are zeroed
# before the tests run.
#
# Environment:
#   SIPTLS_BUILD_ROOT   where the build folders go (default: <repo>/build)
#   SIPTLS_SKIP_FUZZ=1  skip the clang fuzz build
#   SIPTLS_WOLFSSL      bundled (default: Debian 13's wolfSSL 5.7.2 built
#                       once into <build root>/deps and shared by every build
#                       folder) or system (Debian 12's libwolfssl-dev)
#   JOBS                parallel jobs for build and ctest (default 2)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
build_root=${SIPTLS_BUILD_ROOT:-$repo/build}
jobs=${JOBS:-2}
cov_dir=$build_root/coverage
fuzz_dir=$build_root/fuzz
mkdir -p "$build_root"

say() { printf '\n== test.sh: %s\n' "$*"; }

# ---- dependencies -----------------------------------------------------------
# Every tool a test uses is here (a fresh Debian 12 has none of them, nor
# python3, which no test uses): openssl and gnutls-bin are the interop
# peers, jq reads the bench's JSON, iproute2's ss finds the port a peer
# bound, curl scrapes serve --metrics, dnsmasq (dnsmasq-base: the binary,
# no system service) is the real DNS server the resolver tests start on
# loopback with their own zone, libssl-dev is the install test's OpenSSL
# host, strace watches test_keylog_off, nftables and conntrack are the NAT
# of test_dtls_nat_rebind (in network namespaces of its own).
# wolfSSL: the bundled build (the default) fetches Debian
# 13's source with apt-get source (dpkg-dev) and builds it (autotools);
# SIPTLS_WOLFSSL=system uses Debian 12's libwolfssl-dev instead
# (docs/security.md).
wolfssl_mode=${SIPTLS_WOLFSSL:-bundled}
deps=(build-essential cmake pkg-config libev-dev libc-ares-dev libcmocka-dev lcov openssl
      gnutls-bin jq iproute2 curl dnsmasq-base clang libclang-rt-14-dev libssl-dev strace
      nftables conntrack)
if [[ $wolfssl_mode == system ]]; then
    deps+=(libwolfssl-dev)
else
    deps+=(dpkg-dev autoconf automake libtool patch debian-archive-keyring)
fi
missing=()
for p in "${deps[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done
if ((${#missing[@]})); then
    say "installing missing packages: ${missing[*]}"
    if [[ $(id -u) -eq 0 ]]; then
        sudo=()
    elif command -v sudo >/dev/null; then
        sudo=(sudo)
    else
        echo "test.sh: missing packages (${missing[*]}) and not root and no sudo" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update
    "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
fi

# ctest prints "NN% tests passed, F tests failed out of T"; keep the counts.
total_tests=0
failed_tests=0
count_ctest() { # logfile
    local line
    line=$(grep -Eo '[0-9]+ tests? failed out of [0-9]+' "$1" | tail -n1 || true)
    if [[ -n $line ]]; then
        failed_tests=$((failed_tests + $(awk '{print $1}' <<<"$line")))
        total_tests=$((total_tests + $(awk '{print $NF}' <<<"$line")))
    fi
}

status=0
fail_steps=()
step_failed() { status=1; fail_steps+=("$1"); }

# ---- coverage build + unit / integration / interop tests ---------------------
built=1
say "configure coverage build in $cov_dir"
wolfssl_args=(-DSIPTLS_WOLFSSL="$wolfssl_mode" -DSIPTLS_DEPS_DIR="$build_root/deps")
if ! cmake -S "$repo" -B "$cov_dir" -DCMAKE_BUILD_TYPE=Debug "${wolfssl_args[@]}" \
    -DSIPTLS_WERROR=ON -DSIPTLS_COVERAGE=ON -DSIPTLS_SANITIZE=OFF -DSIPTLS_FUZZ=OFF; then
    step_failed "configure"
    built=0
fi
if ((built)); then
    say "build (coverage)"
    if ! cmake --build "$cov_dir" -j "$jobs"; then
        step_failed "build"
        built=0
    fi
fi

if ((built)); then
    # Zero the counters so that a second run measures only itself.
    lcov --quiet --zerocounters --directory "$cov_dir" >/dev/null

    say "ctest (all labels except fuzz)"
    cov_log=$cov_dir/ctest-test.sh.log
    set +e
    (cd "$cov_dir" && ctest --output-on-failure -j "$jobs" -LE fuzz --no-tests=error) 2>&1 |
        tee "$cov_log"
    rc=${PIPESTATUS[0]}
    set -e
    count_ctest "$cov_log"
    ((rc == 0)) || step_failed "ctest"
fi

# ---- fuzz targets (clang only) ----------------------------------------------
fuzz_note="fuzz: skipped"
if [[ ${SIPTLS_SKIP_FUZZ:-0} == 1 ]]; then
    fuzz_note="fuzz: skipped (SIPTLS_SKIP_FUZZ=1)"
elif ! command -v clang >/dev/null; then
    fuzz_note="fuzz: skipped (no clang)"
elif ! cmake -S "$repo" -B "$fuzz_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "${wolfssl_args[@]}" \
    -DCMAKE_C_COMPILER=clang -DSIPTLS_FUZZ=ON -DSIPTLS_COVERAGE=OFF -DSIPTLS_SANITIZE=OFF \
    >"$build_root/fuzz-configure.log" 2>&1; then
    cat "$build_root/fuzz-configure.log"
    step_failed "fuzz configure"
    fuzz_note="fuzz: configure FAILED"
else
    # Build only the fuzz targets (a fuzz test's name is its target's name).
    mapfile -t fuzz_targets < <(cd "$fuzz_dir" && ctest -N -L fuzz |
        sed -n 's/^ *Test *#[0-9]*: *//p')
    if ((${#fuzz_targets[@]} == 0)); then
        fuzz_note="fuzz: no targets yet (tests/fuzz/fuzz_*.c)"
        say "$fuzz_note"
    else
        say "build fuzz targets (clang) in $fuzz_dir: ${fuzz_targets[*]}"
        if ! cmake --build "$fuzz_dir" -j "$jobs" --target "${fuzz_targets[@]}"; then
            step_failed "fuzz build"
            fuzz_note="fuzz: build FAILED"
        else
            say "ctest -L fuzz"
            fuzz_log=$fuzz_dir/ctest-test.sh.log
            set +e
            (cd "$fuzz_dir" && ctest --output-on-failure -j "$jobs" -L fuzz) 2>&1 | tee "$fuzz_log"
            rc=${PIPESTATUS[0]}
            set -e
            count_ctest "$fuzz_log"
            if ((rc == 0)); then
                fuzz_note="fuzz: ${#fuzz_targets[@]} target(s) ok"
            else
                step_failed "fuzz"
                fuzz_note="fuzz: FAILED"
            fi
        fi
    fi
fi

# ---- coverage gate ----------------------------------------------------------
cov_line="line coverage: n/a"
if ((built)); then
    say "coverage gate"
    set +e
    gate_out=$(bash "$repo/coverage/gate.sh" "$cov_dir" "$repo" 2>&1)
    rc=$?
    set -e
    printf '%s\n' "$gate_out"
    cov_line=$(grep -E '^line coverage:' <<<"$gate_out" | tail -n1 || true)
    [[ -n $cov_line ]] || cov_line="line coverage: n/a"
    ((rc == 0)) || step_failed "coverage gate"
fi

passed=$((total_tests - failed_tests))
if ((status == 0)); then
    echo "test.sh: PASS — ${passed} passed, ${failed_tests} failed; ${fuzz_note}; ${cov_line}"
else
    echo "test.sh: FAIL (${fail_steps[*]}) — ${passed} passed, ${failed_tests} failed; ${fuzz_note}; ${cov_line}"
fi
exit "$status"
