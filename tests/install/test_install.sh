#!/usr/bin/env bash
# Install test: install a siptls build into a temporary prefix and build a
# host program (host.c) against the INSTALLED files, two ways:
#   (a) cc host.c $(pkg-config --cflags --libs siptls)   (PKG_CONFIG_PATH)
#   (b) the CMake project in this folder: find_package(siptls) and
#       siptls::siptls (shared) / siptls::siptls_static   (CMAKE_PREFIX_PATH)
# then run every executable and expect it to print "ok".
#
#   tests/install/test_install.sh SOURCE_DIR BUILD_DIR
#
# BUILD_DIR must be built. Sanitizer and coverage builds are handled: the
# host gets the same compiler and the same -fsanitize / --coverage flags.
# Run by ctest as "install_test" (label integration). The temporary folder
# is always removed.
set -euo pipefail

src=$(cd "${1:?usage: test_install.sh SOURCE_DIR BUILD_DIR}" && pwd)
build=$(cd "${2:?usage: test_install.sh SOURCE_DIR BUILD_DIR}" && pwd)
here=$src/tests/install
cache=$build/CMakeCache.txt

tmp=$(mktemp -d "${TMPDIR:-/tmp}/siptls-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix

fail() { echo "test_install: FAIL: $*" >&2; exit 1; }
cache_get() { sed -n "s/^$1:[A-Z]*=//p" "$cache" | head -n1; }

[[ -f $cache ]] || fail "$build is not a CMake build folder"
cc=$(cache_get CMAKE_C_COMPILER)
[[ -n $cc ]] || cc=cc
flags=()
if [[ $(cache_get SIPTLS_SANITIZE) == ON ]]; then
    flags+=('-fsanitize=address,undefined' -fno-omit-frame-pointer)
fi
if [[ $(cache_get SIPTLS_COVERAGE) == ON ]]; then
    flags+=(--coverage)
fi

echo "== cmake --install $build --prefix $prefix"
cmake --install "$build" --prefix "$prefix" >"$tmp/install.log" 2>&1 ||
    { cat "$tmp/install.log" >&2; fail "cmake --install"; }

[[ -f $prefix/include/siptls/siptls.h ]] || fail "include/siptls/siptls.h not installed"
pc=$(find "$prefix" -name siptls.pc -path '*/pkgconfig/*' | head -n1)
[[ -n $pc ]] || fail "siptls.pc not installed"
cfgfile=$(find "$prefix" -name siptlsConfig.cmake | head -n1)
[[ -n $cfgfile ]] || fail "siptlsConfig.cmake not installed"
libdir=$(dirname "$(dirname "$pc")")
ls "$libdir"/libsiptls.so* >/dev/null 2>&1 || fail "libsiptls.so not installed in $libdir"
[[ -f $libdir/libsiptls.a ]] || fail "libsiptls.a not installed in $libdir"
export LD_LIBRARY_PATH=$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}

check_ok() { # name executable
    local out
    out=$("$2" 2>"$tmp/$1.err") || { cat "$tmp/$1.err" >&2; fail "$1: exited $?"; }
    [[ $out == ok ]] || { cat "$tmp/$1.err" >&2; fail "$1: printed '$out', want 'ok'"; }
    echo "$1: ok"
}

# (a) pkg-config
echo "== (a) $cc host.c \$(pkg-config --cflags --libs siptls)"
PKG_CONFIG_PATH=$(dirname "$pc")${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
export PKG_CONFIG_PATH
pc_flags=$(pkg-config --cflags --libs siptls) || fail "pkg-config --cflags --libs siptls"
echo "   pkg-config: $pc_flags"
[[ $pc_flags == *"-I$prefix/"* ]] ||
    fail "pkg-config --cflags does not point into the install prefix: $pc_flags"
# shellcheck disable=SC2086 # pkg-config output is a list of words
"$cc" -std=c11 -Wall -Wextra -Werror "${flags[@]}" -o "$tmp/host_pc" "$here/host.c" $pc_flags ||
    fail "(a) compile/link with pkg-config flags"
check_ok "pkg-config host" "$tmp/host_pc"

# (b) CMake package
echo "== (b) find_package(siptls) with CMAKE_PREFIX_PATH=$prefix"
cmake -S "$here" -B "$tmp/host-build" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_C_COMPILER="$cc" \
    -DCMAKE_C_FLAGS="${flags[*]}" -DCMAKE_EXE_LINKER_FLAGS="${flags[*]}" \
    >"$tmp/host-cmake.log" 2>&1 || { cat "$tmp/host-cmake.log" >&2; fail "(b) configure"; }
cmake --build "$tmp/host-build" >"$tmp/host-build.log" 2>&1 ||
    { cat "$tmp/host-build.log" >&2; fail "(b) build"; }
check_ok "cmake host (siptls::siptls)" "$tmp/host-build/host"
check_ok "cmake host (siptls::siptls_static)" "$tmp/host-build/host_static"

echo "test_install: PASS"
