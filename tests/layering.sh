#!/bin/sh
# Checks the layering of lib/ops and lib/tune (DESIGN.md: each layer calls only the one
# below). lib/tune holds two layers: the tuning database (the files named in DB below),
# which sits under lib/ops and answers its lookups, and the tuners (every other lib/tune
# file), which sit above lib/ops and time its entry points. Fails when
#   1. lib/ops references a symbol that a tuner defines;
#   2. a file below lib/ops (lib/*.c and the database) references a symbol that lib/ops
#      or a tuner defines;
#   3. a database file #includes a header of lib/ops, or lib/ops one of a tuner.
# Calls are read from the object files with nm (defined and undefined global symbols),
# includes from the sources.
#
# Usage: tests/layering.sh SOURCE_DIR OBJECTS...   (the objects of clcnn_objects; one
# argument with ;-separated paths, as $<TARGET_OBJECTS:clcnn_objects> gives, works too)
set -eu

# The database: sources and headers under lib/tune. A new lib/tune file is a tuner until
# it is named here.
DB="conv_db tune_file"
DB_HEADERS="conv_db.h tune_internal.h"

src=$1
shift
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
: >"$tmp/ops.def" && : >"$tmp/tuner.def"
: >"$tmp/ops.files" && : >"$tmp/below.files"

is_db() {
    for d in $DB; do [ "$1" = "$d" ] && return 0; done
    return 1
}

count=0
for arg in "$@"; do
    oldifs=$IFS
    IFS=';'
    for obj in $arg; do
        IFS=$oldifs
        [ -n "$obj" ] || continue
        count=$((count + 1))
        base=$(basename "$obj" .o)
        base=${base%.c}
        case $obj in
        */lib/ops/*) layer=ops ;;
        */lib/tune/*) if is_db "$base"; then layer=below; else layer=tuner; fi ;;
        */lib/graph/* | */lib/exec/* | */lib/nn/* | */lib/data/* | */lib/dist/*) layer=above ;;
        */lib/*) layer=below ;;
        *) layer=other ;;
        esac
        case $layer in
        ops | tuner) nm -g --defined-only "$obj" | awk 'NF >= 3 {print $NF}' >>"$tmp/$layer.def" ;;
        esac
        case $layer in
        ops | below) echo "$obj" >>"$tmp/$layer.files" ;;
        esac
    done
    IFS=$oldifs
done
[ "$count" -gt 0 ] || { echo "layering: no object files given" >&2; exit 2; }
[ -s "$tmp/ops.def" ] && [ -s "$tmp/tuner.def" ] && [ -s "$tmp/below.files" ] ||
    { echo "layering: found no lib/ops, tuner or database objects among $count" >&2; exit 2; }

fail=0
# Report every undefined symbol of the objects listed in $1 that $2 defines.
check() {
    sort -u "$2" >"$tmp/defs"
    while read -r obj; do
        nm -u "$obj" | awk '{print $NF}' | sort -u | comm -12 - "$tmp/defs" >"$tmp/bad"
        if [ -s "$tmp/bad" ]; then
            echo "layering: $(echo "$obj" | sed 's|.*/lib/|lib/|; s|\.o$||') $3: $(tr '\n' ' ' <"$tmp/bad")"
            fail=1
        fi
    done <"$1"
}
check "$tmp/ops.files" "$tmp/tuner.def" "(lib/ops) calls the tuners"
cat "$tmp/ops.def" "$tmp/tuner.def" >"$tmp/above.def"
check "$tmp/below.files" "$tmp/above.def" "(below lib/ops) calls lib/ops or a tuner"

# Includes: the database never includes lib/ops; lib/ops never a tuner's header.
db_files=
for d in $DB; do db_files="$db_files $src/lib/tune/$d.c"; done
for h in $DB_HEADERS; do db_files="$db_files $src/lib/tune/$h"; done
for f in $db_files; do
    [ -f "$f" ] || { echo "layering: $f is missing (update DB in $0)"; fail=1; continue; }
    if grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"[^"]*ops/' "$f"; then
        echo "layering: ${f#"$src"/} (the database) includes a lib/ops header"
        fail=1
    fi
done
for h in "$src"/lib/tune/*.h; do
    name=$(basename "$h")
    case " $DB_HEADERS " in *" $name "*) continue ;; esac
    if grep -lE "^[[:space:]]*#[[:space:]]*include[[:space:]]*\"[^\"]*$name\"" "$src"/lib/ops/*.[ch]; then
        echo "layering: lib/ops includes $name, a tuner's header"
        fail=1
    fi
done

[ "$fail" -eq 0 ] && echo "layering: ok ($count objects; database: $DB)"
exit "$fail"
