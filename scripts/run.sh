#!/usr/bin/env bash
# siptls — THE run command (README "Run").
#
#   ./scripts/run.sh                 build, then serve on the defaults:
#       siptls serve --listen tls:127.0.0.1:5061 --listen dtls:127.0.0.1:5061
#   ./scripts/run.sh --listen tls:0.0.0.0:5061 --cert x.pem --key x.key
#                                    your arguments replace the defaults:
#       siptls serve --listen tls:0.0.0.0:5061 --cert x.pem --key x.key
#   ./scripts/run.sh ping tls:127.0.0.1:5061 --insecure
#                                    a first argument that is a word (not an
#                                    option) is a subcommand: siptls ping ...
#
# Installs the Debian 12 build packages when one is missing (apt-get,
# through sudo when not root); the first build also fetches and builds
# wolfSSL (Debian 13's source, a few minutes, once: <build root>/deps), then
# builds the release configuration in
# build/release (tests off), then execs build/release/siptls. Without --cert
# `siptls serve` runs on an in-memory development certificate (never for
# production). Stop it with Ctrl-C.
#
# Environment:
#   SIPTLS_BUILD_ROOT          where the build folders go (default: <repo>/build)
#   SIPTLS_RUN_BUILD_ONLY=1    build, do not start (used by .ci/run)
#   SIPTLS_WOLFSSL             bundled (default) or system (docs/security.md)
#   JOBS                       parallel build jobs (default 2)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_root=${SIPTLS_BUILD_ROOT:-$repo/build}
build=$build_root/release
jobs=${JOBS:-2}

# The bundled wolfSSL (default) is fetched with apt-get source (dpkg-dev)
# and built with autotools; SIPTLS_WOLFSSL=system links libwolfssl-dev.
wolfssl_mode=${SIPTLS_WOLFSSL:-bundled}
deps=(build-essential cmake pkg-config libev-dev libc-ares-dev)
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
    echo "run.sh: installing missing packages: ${missing[*]}" >&2
    if [[ $(id -u) -eq 0 ]]; then
        sudo=()
    elif command -v sudo >/dev/null; then
        sudo=(sudo)
    else
        echo "run.sh: missing packages (${missing[*]}) and not root and no sudo" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update >&2
    "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}" >&2
fi

# Build output goes to stderr so that stdout carries only siptls's own.
{
    cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=Release -DSIPTLS_TESTS=OFF \
        -DSIPTLS_WOLFSSL="$wolfssl_mode" -DSIPTLS_DEPS_DIR="$build_root/deps" \
        -DSIPTLS_COVERAGE=OFF -DSIPTLS_SANITIZE=OFF -DSIPTLS_FUZZ=OFF >/dev/null
    cmake --build "$build" -j "$jobs"
} >&2

if [[ ${SIPTLS_RUN_BUILD_ONLY:-0} == 1 ]]; then
    echo "run.sh: built $build" >&2
    exit 0
fi

bin=$build/siptls
if [[ ! -x $bin ]]; then
    cat >&2 <<MSG
run.sh: $bin was not built: this checkout has no CLI yet
        (the siptls executable is made from src/cli/*.c). The library built
        fine; nothing to start.
MSG
    exit 1
fi

if (($# == 0)); then
    set -- serve --listen tls:127.0.0.1:5061 --listen dtls:127.0.0.1:5061
elif [[ $1 == -* ]]; then
    set -- serve "$@"
fi
echo "run.sh: $bin $*" >&2
exec "$bin" "$@"
