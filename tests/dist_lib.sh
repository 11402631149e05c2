# Helpers of tests/dist_mpi.sh and tests/dist_cli.sh (sourced): $tag names the script in
# messages, files are relative to the current directory, a failure sets fail=1.

# run NAME COMMAND...: run it with its output in NAME.out; print that output if it fails.
run() {
    name=$1
    shift
    if ! "$@" >"$name.out" 2>&1; then
        echo "$tag: $name failed:"
        cat "$name.out"
        fail=1
    fi
}

# same A B: the two files must be byte-identical.
same() {
    if cmp "$1" "$2"; then
        echo "$tag: $1 and $2 are identical ($(wc -c <"$1") bytes)"
    else
        echo "$tag: FAIL: $1 and $2 differ"
        fail=1
    fi
}

# abspath FILE: FILE as an absolute path (the scripts cd into a temporary folder).
abspath() {
    echo "$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
}
