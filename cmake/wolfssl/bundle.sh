#!/usr/bin/env bash
# siptls — fetch Debian's wolfSSL source package with apt and build it as a
# static, position-independent library configured for siptls
# (cmake/wolfssl/options). Run by CMake at configure time
# (cmake/wolfssl.cmake) when -DSIPTLS_WOLFSSL=bundled, the default.
#
#   cmake/wolfssl/bundle.sh --deps DIR --version DEBIAN_VERSION [options]
#
#   --deps DIR         cache folder shared by the build folders of a checkout
#                      (sources, apt state, one install per configuration)
#   --version V        the pinned Debian version of source package wolfssl
#   --source DIR       use this unpacked source tree instead (offline build)
#   --cc CC            compiler for wolfSSL (default: cc)
#   --jobs N           parallel make jobs (default: $JOBS or 2)
#   --mirror URL       Debian archive (default http://deb.debian.org/debian)
#   --keyring FILE     keyring that signs the archive's Release files
#                      (default /usr/share/keyrings/debian-archive-keyring.gpg)
#   --suites LIST      suites to look the version up in (default
#                      "trixie trixie-security"; a -security suite is fetched
#                      from the mirror's -security archive)
#   --check-newer      do not build: refresh the indexes and exit 3 when the
#                      suites offer a newer wolfssl than --version (CI)
#
# Prints the install prefix (PREFIX/include, PREFIX/lib/libwolfssl.a) as
# the last line of stdout; the rest goes to stderr and to DIR/*.log.
#
# How the source is obtained: `apt-get source wolfssl=VERSION` with a
# private sources list, list and cache folders under DIR (the machine's apt
# configuration and state are never touched). apt checks the InRelease
# signature with --keyring and every downloaded file against the signed
# Sources index; dpkg-source unpacks it and applies Debian's patches.
#
# Cached: a second run with the same source, options, compiler and flags
# prints the existing prefix without any network access or build. Runs of
# several build folders at once wait for each other (flock on DIR/.lock).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
options_file=$here/options
deps=""
version=""
source_dir=""
cc=${CC:-cc}
jobs=${JOBS:-2}
mirror=http://deb.debian.org/debian
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
suites="trixie trixie-security"
check_newer=0

die() { echo "wolfssl bundle: $*" >&2; exit 1; }
while (($#)); do
    case $1 in
    --deps) deps=$2; shift 2 ;;
    --version) version=$2; shift 2 ;;
    --source) source_dir=$2; shift 2 ;;
    --cc) cc=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --mirror) mirror=$2; shift 2 ;;
    --keyring) keyring=$2; shift 2 ;;
    --suites) suites=$2; shift 2 ;;
    --check-newer) check_newer=1; shift ;;
    *) die "unknown argument '$1'" ;;
    esac
done
[[ -n $deps ]] || die "--deps is required"
[[ -n $version || -n $source_dir ]] || die "--version or --source is required"
mkdir -p "$deps"
deps=$(cd "$deps" && pwd)

# One fetch/build at a time per cache folder; others wait (up to an hour).
exec 9>"$deps/.lock"
flock -w 3600 9 || die "timed out waiting for $deps/.lock"

log() { echo "wolfssl bundle: $*" >&2; }

# ---- apt with a private sources list, lists and cache under DIR/apt ----------
apt_setup() {
    command -v apt-get >/dev/null || die "apt-get not found (a Debian system is needed)"
    [[ -r $keyring ]] || die "keyring $keyring not readable (package debian-archive-keyring)"
    aptdir=$deps/apt
    mkdir -p "$aptdir/lists/partial" "$aptdir/cache/archives/partial"
    : >"$aptdir/sources.list"
    local s m
    for s in $suites; do
        m=$mirror
        [[ $s == *-security ]] && m=${mirror%/}-security
        echo "deb-src [signed-by=$keyring] $m $s main" >>"$aptdir/sources.list"
    done
    apt_opts=(-o "Dir::Etc::SourceList=$aptdir/sources.list" -o Dir::Etc::SourceParts=/dev/null
              -o "Dir::State::Lists=$aptdir/lists" -o "Dir::Cache=$aptdir/cache"
              -o Acquire::Languages=none -o APT::Get::Only-Source=true)
}

# --check-newer: is there a newer wolfssl than the pinned one in the suites?
if ((check_newer)); then
    [[ -n $version ]] || die "--check-newer needs --version"
    apt_setup
    apt-get "${apt_opts[@]}" update >"$deps/check-newer.log" 2>&1 || {
        cat "$deps/check-newer.log" >&2
        die "apt-get update failed"
    }
    newest=$version
    while read -r v; do
        dpkg --compare-versions "$v" gt "$newest" && newest=$v
    done < <(apt-cache "${apt_opts[@]}" showsrc wolfssl | sed -n 's/^Version: //p')
    if [[ $newest == "$version" ]]; then
        echo "wolfssl: pinned $version is the newest in $suites ($mirror)"
        exit 0
    fi
    echo "wolfssl: NEWER $newest in $suites than the pinned $version: move the pin (docs/security.md)"
    exit 3
fi

# ---- the source tree -----------------------------------------------------------
if [[ -n $source_dir ]]; then
    [[ -d $source_dir ]] || die "--source $source_dir: no such folder"
    src=$(cd "$source_dir" && pwd)
    [[ -f $src/wolfssl/ssl.h && (-f $src/configure.ac || -x $src/configure) ]] ||
        die "--source $src does not look like a wolfSSL source tree (no wolfssl/ssl.h, configure)"
    # The tree may change between runs: its file list, sizes and times are
    # part of the cache key.
    src_id="dir:$src:$(cd "$src" && find . -type f ! -path './.git/*' -printf '%P %s %T@\n' |
        LC_ALL=C sort | sha256sum | cut -c1-16)"
else
    srcroot=$deps/src/wolfssl_$version
    if [[ ! -f $srcroot/.fetched ]]; then
        apt_setup
        fetch_log=$deps/fetch-$version.log
        log "fetching Debian source package wolfssl $version with apt-get (log: $fetch_log)"
        rm -rf "$srcroot"
        mkdir -p "$srcroot"
        {
            apt-get "${apt_opts[@]}" update &&
                (cd "$srcroot" && apt-get "${apt_opts[@]}" source "wolfssl=$version")
        } >"$fetch_log" 2>&1 || {
            tail -n 30 "$fetch_log" >&2
            die "apt-get source wolfssl=$version failed (log: $fetch_log)"
        }
        grep -q "^Version: $version\$" "$srcroot"/wolfssl_*.dsc ||
            die "the downloaded .dsc is not version $version"
        touch "$srcroot/.fetched"
    fi
    src=$(find "$srcroot" -mindepth 1 -maxdepth 1 -type d -name 'wolfssl-*' | head -n1)
    [[ -n $src && -f $src/wolfssl/ssl.h ]] || die "no unpacked wolfssl-* tree in $srcroot"
    src_id="debian:$version"
fi

# ---- the configuration -------------------------------------------------------
configure_args=()
defines=()
while read -r line; do
    line=${line%%#*}
    line=${line%"${line##*[![:space:]]}"}
    [[ -z $line ]] && continue
    if [[ $line == -D* ]]; then
        defines+=("$line")
    else
        configure_args+=("$line")
    fi
done <"$options_file"

command -v "$cc" >/dev/null || die "compiler '$cc' not found"
cc_id=$("$cc" --version 2>/dev/null | head -n1)
# Hardening as Debian builds its packages (dpkg-buildflags, hardening=+all),
# minus what only applies to executables. _FORTIFY_SOURCE is given to make
# only, so that it does not land in <wolfssl/options.h> (an -O0 host build
# including it would warn).
cflags="-O2 -g0 -fstack-protector-strong -fstack-clash-protection -fcf-protection -Wformat"
fortify="-D_FORTIFY_SOURCE=2"

shim=$here/siptls_wolfssl_shim.c
shim_id=$(sha256sum <"$shim" | cut -c1-16)
# Our patches to the source (cmake/wolfssl/*.patch, applied in name order
# to the build copy; each one explains itself): part of the cache key.
patches=("$here"/*.patch)
[[ -e ${patches[0]} ]] || patches=()
patch_id=$( ((${#patches[@]})) && cat "${patches[@]}" | sha256sum | cut -c1-16 || echo none)
key=$(printf '%s\n' "bundle-1" "$src_id" "${configure_args[@]}" "${defines[@]}" "$cc_id" \
    "$cflags" "$fortify" "shim:$shim_id" "patches:$patch_id" | sha256sum | cut -c1-12)
upstream=$(basename "$src")
out=$deps/${upstream}-$key
prefix=$out/prefix
if [[ -f $out/.built && -f $prefix/lib/libwolfssl.a && -f $prefix/lib/libsiptls_wolfshim.a &&
    -f $prefix/include/wolfssl/options.h ]]; then
    echo "$prefix"
    exit 0
fi

# ---- build (in a copy: the source tree stays as apt unpacked it) --------------
for tool in make autoreconf libtoolize patch; do
    command -v $tool >/dev/null ||
        die "$tool not found: install make autoconf automake libtool patch (apt-get install ...)"
done
build_log=$out.log
log "building ${upstream} ($src_id, $cc_id) in $out with -j$jobs (log: $build_log)"
rm -rf "$out"
mkdir -p "$out/build"
start=$SECONDS
{
    cp -a "$src/." "$out/build/"
    cd "$out/build"
    for p in "${patches[@]}"; do
        echo "applying $(basename "$p")"
        patch -p1 --forward --batch <"$p"
    done
    if [[ ! -x configure ]]; then
        autoreconf --install --force
    fi
    ./configure --prefix="$prefix" CC="$cc" CFLAGS="$cflags" CPPFLAGS="${defines[*]}" \
        "${configure_args[@]}"
    make -j"$jobs" CPPFLAGS="${defines[*]} $fortify"
    make install
    # The shim (siptls_wolfssl_shim.c: the record number of the last record
    # read, which wolfSSL has no public call for) needs wolfssl/internal.h
    # with the layout of this very build: compiled here, with config.h and
    # the library's flags (options.h holds the configure defines).
    "$cc" $cflags -fPIC -DHAVE_CONFIG_H ${defines[*]} $fortify -I. -c "$shim" \
        -o siptls_wolfssl_shim.o
    ar rcs "$prefix/lib/libsiptls_wolfshim.a" siptls_wolfssl_shim.o
} >"$build_log" 2>&1 || {
    tail -n 40 "$build_log" >&2
    die "building wolfSSL failed (log: $build_log)"
}
cp "$out/build/config.log" "$out/config.log" 2>/dev/null || true
rm -rf "$out/build"
touch "$out/.built"
log "built in $((SECONDS - start)) s: $prefix"
echo "$prefix"
