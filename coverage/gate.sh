#!/usr/bin/env bash
# siptls coverage gate.
#
#   coverage/gate.sh BUILD_DIR [SOURCE_DIR]
#
# BUILD_DIR is a build configured with -DSIPTLS_COVERAGE=ON in which the
# tests have just run (scripts/test.sh does both). Captures the counters
# with lcov (plus a zero baseline of every compiled file, so a source no
# test touches counts as 0%, not as absent), keeps only the library and CLI
# sources (src/, tls/, dtls/; never tests/ or /usr/), writes an HTML report
# into BUILD_DIR/coverage-html, prints
#     line coverage: X% (threshold Y%)
# and exits 1 when X < Y. Y is the number in coverage/threshold: raise it,
# never lower it (coverage/README.md).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build=$(cd "${1:?usage: gate.sh BUILD_DIR [SOURCE_DIR]}" && pwd)
src=$(cd "${2:-$here/..}" && pwd)
threshold=$(tr -d ' \t\r\n' <"$here/threshold")
rc_file=$here/lcovrc
out=$build/coverage-gate
html=$build/coverage-html

if ! [[ $threshold =~ ^[0-9]+([.][0-9]+)?$ ]]; then
    echo "gate.sh: bad threshold '$threshold' in $here/threshold" >&2
    exit 2
fi
if ! grep -q '^SIPTLS_COVERAGE:BOOL=ON' "$build/CMakeCache.txt" 2>/dev/null; then
    echo "gate.sh: $build is not a -DSIPTLS_COVERAGE=ON build" >&2
    exit 2
fi

lcov_() { lcov --quiet --config-file "$rc_file" "$@"; }

# Notes of sources that no longer exist (removed since the build folder was
# made) would break the capture: drop them with their counters.
while IFS= read -r -d '' gcno; do
    rel=${gcno#"$build"/}
    rel=${rel#*CMakeFiles/*.dir/}
    rel=${rel%.gcno}
    case $rel in
    src/* | tls/* | dtls/*)
        if [[ ! -e $src/$rel ]]; then
            rm -f "$gcno" "${gcno%.gcno}.gcda" "${gcno%.gcno}.o"
        fi
        ;;
    esac
done < <(find "$build" -name '*.gcno' -path '*/CMakeFiles/*' -print0)

rm -rf "$out" "$html"
mkdir -p "$out"

if ! find "$build" -name '*.gcda' -print -quit | grep -q .; then
    echo "gate.sh: no coverage counters (.gcda) in $build: did the tests run?" >&2
    echo "line coverage: 0% (threshold ${threshold}%)"
    exit 1
fi

lcov_ --capture --initial --directory "$build" --base-directory "$src" \
    --output-file "$out/base.info" 2>"$out/lcov-base.log" || { cat "$out/lcov-base.log" >&2; exit 2; }
lcov_ --capture --directory "$build" --base-directory "$src" \
    --output-file "$out/tests.info" 2>"$out/lcov-tests.log" || { cat "$out/lcov-tests.log" >&2; exit 2; }
lcov_ --add-tracefile "$out/base.info" --add-tracefile "$out/tests.info" \
    --output-file "$out/all.info"
lcov_ --extract "$out/all.info" "$src/src/*" "$src/tls/*" "$src/dtls/*" \
    --output-file "$out/project.info"
lcov_ --remove "$out/project.info" "$src/tests/*" '/usr/*' \
    --output-file "$out/coverage.info"

read -r hit found < <(awk -F: '/^LH:/ {h += $2} /^LF:/ {f += $2} END {print h + 0, f + 0}' \
    "$out/coverage.info")
if ((found == 0)); then
    echo "gate.sh: no instrumented lines under src/, tls/, dtls/" >&2
    echo "line coverage: 0% (threshold ${threshold}%)"
    exit 1
fi

genhtml --quiet --config-file "$rc_file" --title "siptls line coverage" --prefix "$src" \
    --output-directory "$html" "$out/coverage.info" >"$out/genhtml.log" 2>&1 ||
    { cat "$out/genhtml.log" >&2; echo "gate.sh: genhtml failed (report only; gate goes on)" >&2; }

# Per-file table, lowest first: where to write the next test.
awk -F: -v src="$src/" '
    /^SF:/ {f = substr($0, 4); sub("^" src, "", f)}
    /^LF:/ {lf = $2}
    /^LH:/ {lh = $2; printf "  %6.1f%%  %5d/%-5d  %s\n", (lf ? 100 * lh / lf : 100), lh, lf, f}
' "$out/coverage.info" | sort -n
echo "HTML report: $html/index.html"

# X shown rounded down to 0.1 so that a failing X never prints as Y.
pct=$(awk -v h="$hit" -v f="$found" 'BEGIN {x = int(1000 * h / f) / 10; printf "%.1f", x}')
echo "${hit} of ${found} lines hit"
echo "line coverage: ${pct}% (threshold ${threshold}%)"
if awk -v h="$hit" -v f="$found" -v t="$threshold" 'BEGIN {exit !(100 * h < t * f)}'; then
    echo "gate.sh: FAIL: line coverage ${pct}% is below the threshold ${threshold}%" >&2
    exit 1
fi
