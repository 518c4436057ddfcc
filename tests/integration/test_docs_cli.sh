#!/usr/bin/env bash
# The command-line reference of docs/admin-guide.md ("Command-line tool")
# stays true:
#  - every command `siptls --help` lists has a "### `siptls CMD`" section,
#    and every such section is a command;
#  - every long option `siptls CMD --help` prints is in the option table of
#    that command's section, and every option the table lists is one the
#    command accepts, with the arity the table shows (`--name VALUE` or
#    `--name`): asked to getopt itself, so an option that exists only in
#    the help text fails too; short options pair with the same long ones
#    in the table as in the help;
#  - serve's statistics line: the zero line a serve prints when stopped at
#    once is quoted verbatim, and the field table names the fields in the
#    order and with the siptls_stats counters that print_stats() prints;
#  - every link to a heading (`FILE.md#anchor`, `#anchor`) in README.md and
#    docs/*.md leads to a heading that exists (GitHub's anchor rules).
# Args: SOURCE_DIR BUILD_DIR. Every command runs under `timeout`; the one
# serve started here (port 0) is stopped by its pid.
set -u
src=$1 build=$2
bin=$build/siptls
guide=$src/docs/admin-guide.md
[ -x "$bin" ] || { echo "no siptls binary"; exit 77; }
[ -f "$guide" ] || { echo "no $guide"; exit 1; }
export LC_ALL=C # getopt's messages untranslated
# shellcheck source=../support/shtest.sh
. "$(dirname "${BASH_SOURCE[0]}")/../support/shtest.sh"
shtest_start
ok() { passes=$((passes + 1)); }

# Lines of the "### `siptls CMD`" section (up to the next ## or ### heading;
# fenced code blocks are not headings).
section() {
    awk -v h="### \`siptls $1\`" '
        /^```/ { fence = !fence }
        !fence && on && /^##/ && ($0 ~ /^### / || $0 ~ /^## /) { on = 0 }
        !fence && $0 == h { on = 1; next }
        on { print }' "$guide"
}

# Option rows of a section: "| `-c FILE`, `--config FILE` | ... |". Prints
# one line per option named in the first cell: "long NAME ARG" (ARG 1 when
# the cell shows a value) or "pair X NAME" for a short option paired with
# the long one.
doc_options() {
    section "$1" | awk -F'|' '
        /^\| `-/ {
            cell = $2; long = ""; short = ""; arg = 0
            while (match(cell, /`-[^`]*`/)) {
                item = substr(cell, RSTART + 1, RLENGTH - 2)
                cell = substr(cell, RSTART + RLENGTH)
                if (item ~ /^--/) {
                    split(item, w, " ")
                    long = substr(w[1], 3)
                    arg = (item ~ / /) ? 1 : 0
                } else {
                    short = substr(item, 2, 1)
                    sarg = (item ~ / /) ? 1 : 0
                }
            }
            if (long != "") {
                print "long", long, arg
            }
            if (short != "") {
                print "short", short, sarg
                if (long != "") {
                    print "pair", short, long
                }
            }
        }'
}

# ---- commands ------------------------------------------------------------
"$bin" --help > "$work/help.txt" 2>&1 || bad "siptls --help exits non-zero"
cmds=$(awk '/^commands:/ { on = 1; next } on && /^$/ { on = 0 } on && /^  [a-z]/ { print $1 }' \
    "$work/help.txt")
[ -n "$cmds" ] || bad "no commands in siptls --help: $(cat "$work/help.txt")"
documented=$(awk '/^```/ { fence = !fence } !fence && /^### `siptls [a-z]+`$/ {
    gsub(/[`]/, ""); print $3 }' "$guide")
for c in $cmds; do
    if echo "$documented" | grep -qx "$c"; then ok; else
        bad "command '$c' (siptls --help) has no ### \`siptls $c\` section in docs/admin-guide.md"
    fi
done
for c in $documented; do
    if echo "$cmds" | grep -qx "$c"; then ok; else
        bad "docs/admin-guide.md documents 'siptls $c', which siptls --help does not list"
    fi
done

# ---- options of each command -------------------------------------------
for c in $documented; do
    timeout 10 "$bin" "$c" --help > "$work/$c.help" 2> "$work/$c.err" < /dev/null
    rc=$?
    [ "$rc" = 0 ] || { bad "siptls $c --help: exit $rc"; continue; }
    doc_options "$c" > "$work/$c.doc"
    grep -q '^long ' "$work/$c.doc" || { bad "siptls $c: no option table in its section"; continue; }
    # The long options of the help: at the start of an option line, and in
    # the usage line.
    {
        sed -n 's/^ \{1,\}\(-[A-Za-z], \)\{0,1\}--\([a-z][a-z0-9-]*\).*/\2/p' "$work/$c.help"
        grep -m1 '^usage:' "$work/$c.help" | grep -o -- '--[a-z][a-z0-9-]*' | sed 's/^--//'
    } | sort -u > "$work/$c.helplong"
    [ -s "$work/$c.helplong" ] || bad "siptls $c --help: no option found in it"
    while read -r name; do
        if grep -q "^long $name " "$work/$c.doc"; then ok; else
            bad "siptls $c --$name (in --help) is not in the option table of docs/admin-guide.md"
        fi
    done < "$work/$c.helplong"
    # Short/long pairs: each one of the help is in the table, and a short
    # option of the table that the help shows goes with the same long one
    # (a short one the help does not show is only checked against getopt).
    sed -n 's/^ \{1,\}-\([A-Za-z]\), --\([a-z][a-z0-9-]*\).*/pair \1 \2/p' "$work/$c.help" \
        > "$work/$c.helppairs"
    while read -r _ x name; do
        if grep -qx "pair $x $name" "$work/$c.doc"; then ok; else
            bad "siptls $c: --help pairs -$x with --$name, the guide does not"
        fi
    done < "$work/$c.helppairs"
    grep '^pair ' "$work/$c.doc" | while read -r _ x name; do
        if grep -q "^pair $x " "$work/$c.helppairs" && ! grep -qx "pair $x $name" "$work/$c.helppairs"; then
            echo "siptls $c: the guide pairs -$x with --$name, --help does not"
        fi
    done > "$work/$c.pairerr"
    [ -s "$work/$c.pairerr" ] && bad "$(cat "$work/$c.pairerr")" || ok
    # Every documented option is accepted, with the documented arity: asked
    # so that getopt answers before the command does anything. serve gets a
    # configuration file that does not exist first, so that it can never
    # start serving here, whatever a wrong table says.
    guard=()
    [ "$c" = serve ] && guard=(-c "$work/no-such-dir/siptls.conf")
    while read -r kind name arg; do
        if [ "$kind" = long ] && [ "$arg" = 1 ]; then
            opt=("--$name") shown="--$name VALUE"
            want="option '--$name' requires an argument"
        elif [ "$kind" = long ]; then
            opt=("--$name=x") shown="--$name"
            want="option '--$name' doesn't allow an argument"
        elif [ "$kind" = short ] && [ "$arg" = 1 ]; then
            opt=("-$name") shown="-$name VALUE"
            want="option requires an argument -- '$name'"
        elif [ "$kind" = short ]; then
            # An option without a value lets getopt go on to the next word;
            # one that wants a value would swallow it.
            opt=("-$name" --no-such-option-x) shown="-$name"
            want="unrecognized option '--no-such-option-x'"
        else
            continue
        fi
        timeout 10 "$bin" "$c" "${guard[@]}" "${opt[@]}" > "$work/o.out" 2> "$work/o.err" < /dev/null
        rc=$?
        if [ "$kind $name" = "short h" ] && [ "$rc" = 0 ] && grep -q '^usage:' "$work/o.out"; then
            ok # -h answers before getopt sees the next word
        elif grep -qF -- "$want" "$work/o.err"; then
            ok
        else
            bad "siptls $c: the guide documents '$shown'; 'siptls $c ${guard[*]} ${opt[*]}' says: $(head -n2 "$work/o.err")"
        fi
    done < "$work/$c.doc"
done

# ---- serve's statistics line --------------------------------------------
"$bin" serve -q --listen tls:127.0.0.1:0 > "$work/serve.out" 2> "$work/serve.err" < /dev/null &
serve_pid=$!
ready=0
for _ in $(seq 1 200); do
    grep -q "ready on" "$work/serve.out" && { ready=1; break; }
    kill -0 "$serve_pid" 2>/dev/null || break
    sleep 0.05
done
if [ "$ready" = 1 ]; then
    kill -TERM "$serve_pid"
    wait "$serve_pid"
    serve_pid=
    line=$(grep '^stats: ' "$work/serve.err" | tail -n1)
    if [ -n "$line" ] && grep -qxF -- "$line" "$guide"; then ok; else
        bad "serve's statistics line is not quoted verbatim in docs/admin-guide.md: '$line'"
    fi
    # The field table: "| `label` | `counter` | meaning |" rows.
    awk '/^```/ { fence = !fence } !fence && /^#/ { on = ($0 == "#### The statistics line") }
         on && /^\| `/ { print }' "$guide" > "$work/fields"
    cut -d'`' -f4 "$work/fields" > "$work/doc.counters"
    sed -n '/^static void print_stats/,/^}/p' "$src/src/cli/serve.c" | grep -o 's\.[a-z_0-9]*' |
        sed 's/^s\.//' > "$work/code.counters"
    if [ -s "$work/code.counters" ] && diff "$work/code.counters" "$work/doc.counters" > "$work/cdiff"; then
        ok
    else
        bad "statistics table: counters differ from print_stats() in src/cli/serve.c (< code, > guide): $(cat "$work/cdiff")"
    fi
    n_numbers=$(echo "$line" | grep -o '[0-9][0-9]*' | wc -l)
    n_rows=$(wc -l < "$work/fields")
    [ "$n_numbers" = "$n_rows" ] && ok ||
        bad "statistics line has $n_numbers numbers, the guide's table $n_rows rows"
    # The labels, in order, each followed by its number in the line.
    cut -d'`' -f2 "$work/fields" | awk -v line="$line" '
        { i = index(line, $0 " 0"); if (i == 0) { print "label \"" $0 "\" not found in order"; exit 1 }
          line = substr(line, i + length($0) + 2) }' > "$work/lerr"
    [ -s "$work/lerr" ] && bad "statistics table: $(cat "$work/lerr")" || ok
else
    bad "serve did not start: $(cat "$work/serve.err")"
fi

# ---- links to headings ---------------------------------------------------
# GitHub's anchors: lower case, only letters, digits, '-', '_' and spaces
# kept, spaces become '-', a repeated heading gets -1, -2, ...
anchors() {
    awk '/^```/ { fence = !fence; next }
         !fence && /^#+ / {
            h = $0; sub(/^#+ +/, "", h); h = tolower(h)
            gsub(/[^a-z0-9 _-]/, "", h); gsub(/ /, "-", h)
            if (h in seen) { seen[h]++; print h "-" seen[h] - 1 } else { seen[h] = 1; print h }
         }' "$1"
}
for f in "$src/README.md" "$src"/docs/*.md; do
    dir=$(dirname "$f")
    grep -o '\]([^) ]*#[^) ]*)' "$f" | sed 's/^](//; s/)$//' | while read -r link; do
        case $link in http*) continue ;; esac
        target=${link%%#*} anchor=${link#*#}
        [ -n "$target" ] && tf=$dir/$target || tf=$f
        if [ ! -f "$tf" ]; then
            echo "$(basename "$f"): link $link: no file $tf"
        elif ! anchors "$tf" | grep -qxF -- "$anchor"; then
            echo "$(basename "$f"): link $link: no such heading in $(basename "$tf")"
        fi
    done
done > "$work/links"
[ -s "$work/links" ] && bad "broken links: $(cat "$work/links")" || ok

echo "$passes checks passed, $fails failed"
[ "$fails" -eq 0 ]
