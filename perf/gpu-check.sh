#!/usr/bin/env bash
# perf/gpu-check.sh: everything worth doing on a real GPU, in one run that fits a
# 10-minute slot on a fresh clone: build, the test suite on the device, the devices'
# facts, GEMM tuning, the anchors convolution sweep and whole-network timings.
#
#   perf/gpu-check.sh [--device SEL] [--out DIR] [--budget SECONDS] [--skip-tests]
#                     [--debs DIR] [--build DIR] [--time-limit SECONDS]
#                     [--test-timeout SECONDS] [--jobs N]
#
#   --device SEL        device selector (default gpu; cpu for a dry run on POCL)
#   --out DIR           results folder (default perf/results/<date>-<device name>)
#   --budget S          GEMM tuning budget, clcnn tune --budget (default 60)
#   --skip-tests        no test suite
#   --steps LIST        only these steps, comma-separated, of build,devices,tests,tune,
#                       anchors,net_infer,net_train (default all; build is always run, and
#                       is quick when DIR is already built)
#   --debs DIR          unpack the .deb files of perf/gpu-debs.sh into a private prefix
#                       (dpkg -x, nothing installed) and build and run against it
#   --build DIR         build folder (default build-gpu)
#   --time-limit S      the whole run (default 540); each step's own limit is sized for
#                       540 s and scaled with it, then cut to fit the time left
#   --test-timeout S    per-test timeout of ctest (default 150)
#   --jobs N            build and ctest parallelism (default: nproc)
#
# Each step runs under its own time limit and writes its own log; a failed or timed-out
# step is recorded and the run goes on. summary.txt holds the commit, the machine and
# device facts, each step's status and wall time. When $OUT is set (the device tool),
# the folder is also packed into $OUT/gpu-check.tar.gz, beside a copy of summary.txt.
set -uo pipefail

device=gpu out='' budget=60 skip_tests=0 debs='' build='' time_limit=540 test_timeout=150
only=build,devices,tests,tune,anchors,net_infer,net_train
jobs=$(nproc 2>/dev/null || echo 2)
usage() { sed -n '2,28p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
    case $1 in
    --device) device=$2; shift ;;
    --out) out=$2; shift ;;
    --budget) budget=$2; shift ;;
    --skip-tests) skip_tests=1 ;;
    --steps) only=build,$2; shift ;;
    --debs) debs=$2; shift ;;
    --build) build=$2; shift ;;
    --time-limit) time_limit=$2; shift ;;
    --test-timeout) test_timeout=$2; shift ;;
    --jobs) jobs=$2; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "perf/gpu-check.sh: unknown option '$1'" >&2; usage >&2; exit 2 ;;
    esac
    shift
done

src=$(cd "$(dirname "$0")/.." && pwd)
cd "$src" || exit 1
build=${build:-build-gpu}
case $build in /*) ;; *) build=$src/$build ;; esac
t_start=$(date +%s)
mkdir -p "$build"
# Logs go to a staging folder until the device's name (the results folder) is known.
stage=$(mktemp -d "$build/gpu-check.XXXXXX")
summary=$stage/summary.txt
steps=$stage/.steps
: >"$steps"
failed=0

note() { echo "gpu-check: $*" >&2; }
remaining() { echo $((time_limit - ($(date +%s) - t_start))); }

# step NAME LIMIT CMD...: run CMD with its output in NAME.log, under min(LIMIT, the time
# left less a reserve for packing up); record status and wall time.
step() {
    local name=$1 limit=$2
    shift 2
    case ,$only, in
    *,"$name",*) ;;
    *) skip "$name" "not in --steps"; return 1 ;;
    esac
    limit=$((limit * time_limit / 540)) # the limits below are sized for a 540 s run
    local left=$(($(remaining) - 15))
    [ "$limit" -gt "$left" ] && limit=$left
    if [ "$limit" -lt 5 ]; then
        printf '%-10s %-24s %6s s\n' "$name" "skipped (no time left)" 0 >>"$steps"
        note "$name: skipped, no time left"
        failed=1
        return 1
    fi
    note "$name (limit ${limit} s): $*"
    local t0 rc st
    t0=$(date +%s.%N)
    {
        echo "\$ $*"
        echo "# limit ${limit} s, started $(date -u '+%T UTC')"
    } >"$stage/$name.log"
    timeout --kill-after=10 "$limit" "$@" >>"$stage/$name.log" 2>&1
    rc=$?
    local wall
    wall=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    case $rc in
    0) st=ok ;;
    124 | 137) st="TIMEOUT after ${limit} s" ;;
    *) st="FAILED (exit $rc)" ;;
    esac
    echo "# exit $rc after $wall s" >>"$stage/$name.log"
    printf '%-10s %-24s %6s s\n' "$name" "$st" "$wall" >>"$steps"
    note "$name: $st, $wall s"
    [ "$rc" = 0 ] || failed=1
    return "$rc"
}
skip() { printf '%-10s %-24s %6s s\n' "$1" "skipped ($2)" 0 >>"$steps"; }

# ---- prerequisites carried in as .deb files ----------------------------------------------
# dpkg -x into $build/prefix; paths inside the packages (.pc files, CMake configs, absolute
# symbolic links) are rewritten to the prefix; only libraries the system lacks (and the
# ICD loader, whose OCL_ICD_VENDORS we rely on) go on LD_LIBRARY_PATH, so system programs
# keep their own libraries.
cmake_extra=()
unpack_debs() {
    local P=$build/prefix arch=x86_64-linux-gnu f l t
    rm -rf "$P" && mkdir -p "$P/runlib" "$P/bin"
    for f in "$debs"/*.deb; do
        if command -v dpkg >/dev/null; then
            dpkg -x "$f" "$P" || return 1
        else # not a Debian-like system: a .deb is an ar archive holding data.tar.xz
            (cd "$P" && ar p "$f" data.tar.xz | tar -xJ) || return 1
        fi
    done
    find "$P" -type l -lname '/*' | while read -r l; do
        t=$(readlink "$l")
        [ -e "$P$t" ] && ln -sfn "$P$t" "$l"
    done
    find "$P/usr/lib/$arch/pkgconfig" "$P/usr/share/pkgconfig" -name '*.pc' \
        -exec sed -i -E "s#^([A-Za-z_]+)=/usr#\\1=$P/usr#" {} + 2>/dev/null
    find "$P/usr/lib/$arch/cmake" -name '*.cmake' \
        -exec sed -i "s#\"/usr/lib/$arch/#\"$P/usr/lib/$arch/#g" {} + 2>/dev/null
    local have
    have=$(ldconfig -p 2>/dev/null) # no pipe into grep -q: with pipefail, SIGPIPE lies
    for l in libOpenCL.so.1 libclblast.so.1 libcmocka.so.0 libjansson.so.4 libpng16.so.16 \
        libprotobuf-c.so.1 libz.so.1 libprotoc.so.32 libprotobuf.so.32 libpkgconf.so.3; do
        t=$(ls "$P/usr/lib/$arch/$l" "$P/lib/$arch/$l" 2>/dev/null | head -1)
        [ -n "$t" ] || continue
        if [ "$l" = libOpenCL.so.1 ] || ! grep -q "^[[:space:]]*$l " <<<"$have"; then
            ln -sfn "$t" "$P/runlib/$l"
        fi
    done
    export LD_LIBRARY_PATH=$P/runlib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    export PKG_CONFIG_PATH=$P/usr/lib/$arch/pkgconfig:$P/usr/share/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
    export CMAKE_PREFIX_PATH=$P/usr${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}
    # For compilers run without CMake's flags (tests/install_check.sh's pkg-config consumers).
    export LIBRARY_PATH=$P/usr/lib/$arch:$P/lib/$arch${LIBRARY_PATH:+:$LIBRARY_PATH}
    export C_INCLUDE_PATH=$P/usr/include${C_INCLUDE_PATH:+:$C_INCLUDE_PATH}
    export PATH=$PATH:$P/bin:$P/usr/bin # the system's own tools first
    # Tools the system lacks: pkg-config, and cmake/ctest (their libraries only for them).
    command -v pkg-config >/dev/null 2>&1 || export PKG_CONFIG=$P/usr/bin/pkgconf
    for t in cmake ctest; do
        if ! command -v "$t" >/dev/null 2>&1 || [ "$(command -v "$t")" = "$P/usr/bin/$t" ]; then
            printf '#!/bin/sh\nLD_LIBRARY_PATH=%s:%s:$LD_LIBRARY_PATH exec %s "$@"\n' \
                "$P/usr/lib/$arch" "$P/lib/$arch" "$P/usr/bin/$t" >"$P/bin/$t"
            chmod +x "$P/bin/$t"
            export PATH=$P/bin:$PATH
        fi
    done
    cmake_extra+=("-DONNX_PROTO=$P/usr/include/onnx/onnx.proto" "-DPROTOC_C=$P/usr/bin/protoc-c")
    if ! command -v cc >/dev/null 2>&1 && [ -x "$P/usr/bin/gcc-12" ]; then
        # Best effort (perf/gpu-debs.sh --toolchain): gcc from the prefix, with its
        # binutils, C library headers and start files.
        export CC="$P/usr/bin/gcc-12 -B$P/usr/bin/ -B$P/usr/lib/$arch/ -isystem $P/usr/include/$arch"
    fi
    echo "prefix $P: $(ls "$debs"/*.deb | wc -l) packages; runlib: $(ls "$P/runlib" | paste -sd' ' -)"
    echo "pkg-config: ${PKG_CONFIG:-$(command -v pkg-config)}, cmake: $(command -v cmake), ctest: $(command -v ctest), cc: ${CC:-$(command -v cc)}"
}

# The NVIDIA driver ships its OpenCL ICD (libnvidia-opencl.so.1); containers often have the
# library but no /etc/OpenCL/vendors entry. Register it through a private folder.
nvidia_icd() {
    local sys=/etc/OpenCL/vendors lib d
    if grep -qs libnvidia-opencl "$sys"/*.icd; then
        echo "NVIDIA ICD registered in $sys"
        return 0
    fi
    lib=$(ldconfig -p 2>/dev/null | awk '/libnvidia-opencl\.so\.1 / { print $NF; exit }')
    if [ -z "$lib" ]; then
        for d in /usr/lib/x86_64-linux-gnu /usr/lib64 /usr/local/nvidia/lib64 /usr/local/nvidia/lib \
            /usr/lib/nvidia /usr/local/cuda/compat /usr/local/cuda/lib64; do
            [ -e "$d/libnvidia-opencl.so.1" ] && { lib=$d/libnvidia-opencl.so.1; break; }
        done
    fi
    [ -n "$lib" ] || lib=$(find /usr /opt -maxdepth 6 -name 'libnvidia-opencl.so.1' 2>/dev/null | head -1)
    if [ -z "$lib" ]; then
        echo "no libnvidia-opencl.so.1 found: no NVIDIA OpenCL driver here"
        return 0
    fi
    d=$build/vendors
    mkdir -p "$d"
    cp "$sys"/*.icd "$d"/ 2>/dev/null
    echo "$lib" >"$d/nvidia.icd"
    export OCL_ICD_VENDORS=$d
    # the driver's other libraries (libcuda.so.1) sit beside it, maybe off the loader's path
    d=$(dirname "$lib")
    export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$d
    echo "NVIDIA ICD: $lib, registered in OCL_ICD_VENDORS=$d"
}

# ---- run ------------------------------------------------------------------------------------
{
    echo "clcnn gpu-check"
    echo "date:     $(date -u '+%F %T UTC')"
    commit=$(git -C "$src" describe --always --dirty 2>/dev/null || echo "${CLCNN_COMMIT:-unknown (no git here: set CLCNN_COMMIT)}")
    echo "commit:   $commit"
    echo "machine:  $(uname -srm), $(nproc) CPUs, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME"), $(ldd --version 2>/dev/null | head -1)"
    echo "load:     $(cut -d' ' -f1-3 /proc/loadavg) at start"
    echo "options:  --device $device --budget $budget --time-limit $time_limit --test-timeout $test_timeout --jobs $jobs${debs:+ --debs $debs}$([ $skip_tests = 1 ] && echo ' --skip-tests')"
    if command -v nvidia-smi >/dev/null 2>&1; then
        echo "nvidia:   $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -2 | paste -sd';' -)"
    fi
} >"$summary"

setup_log=$stage/setup.log
{
    if [ -n "$debs" ]; then
        case $debs in /*) ;; *) debs=$src/$debs ;; esac
        ls "$debs"/*.deb >/dev/null 2>&1 || echo "--debs $debs: no .deb files"
    fi
} >"$setup_log" 2>&1
t0=$(date +%s)
if [ -n "$debs" ] && ls "$debs"/*.deb >/dev/null 2>&1; then
    unpack_debs >>"$setup_log" 2>&1 || { echo "unpacking failed" >>"$setup_log"; failed=1; }
fi
nvidia_icd >>"$setup_log" 2>&1
printf '%-10s %-24s %6s s\n' setup "ok" "$(($(date +%s) - t0))" >>"$steps"

export CLCNN_CACHE_DIR=$build/cache # programs and the tuning file, shared by every step
export CLCNN_DEVICE=$device         # for commands the tests start
built=0
if step build 240 sh -c "cmake -S '$src' -B '$build' -DCMAKE_BUILD_TYPE=Release \
        -DCLCNN_TEST_TIMEOUT=$test_timeout ${cmake_extra[*]} && cmake --build '$build' -j $jobs"; then
    built=1
fi

perf=$build/clcnn-perf
tool=$build/clcnn
name=
if [ $built = 1 ]; then
    step devices 45 sh -c "'$tool' devices; echo; '$tool' devices --json > '$stage/devices.json'; \
        command -v clinfo >/dev/null && clinfo -l; \
        '$perf' --op peak --device '$device' --format csv > '$stage/peak.csv'"
    name=$(awk -F, 'NR == 2 { print $1 }' "$stage/peak.csv" 2>/dev/null)
    if [ $skip_tests = 1 ]; then
        skip tests "--skip-tests"
    else
        step tests 240 env CLCNN_TEST_DEVICE="$device" \
            ctest --test-dir "$build" -j "$jobs" --output-on-failure --timeout "$test_timeout"
    fi
    step tune $((budget + 60)) "$tool" tune --device "$device" --budget "$budget" &&
        "$tool" tune --device "$device" --show >"$stage/tune.json" 2>&1
    step anchors 120 sh -c "'$perf' --suite anchors --op conv2d_fwd,conv2d_bwd_data,conv2d_bwd_filter \
        --algo all --device '$device' --runs 5 --format csv > '$stage/anchors.csv'"
    step net_infer 90 sh -c "'$perf' --op net_infer --exec all --model resnet50,mobilenet_v2,alexnet \
        --batch 8 --device '$device' --runs 5 --no-peak --format csv > '$stage/net_infer.csv'"
    step net_train 90 sh -c "'$perf' --op net_train --model resnet50,mobilenet_v2,alexnet \
        --batch 8 --device '$device' --runs 5 --no-peak --format csv > '$stage/net_train.csv'"
else
    for s in devices tests tune anchors net_infer net_train; do skip "$s" "build failed"; done
fi

# ---- results folder, summary --------------------------------------------------------------
if [ -z "$out" ]; then
    slug=$(printf '%s' "${name:-unknown-device}" | tr 'A-Z' 'a-z' | tr -cs 'a-z0-9' '-' |
        sed 's/^-//; s/-$//' | cut -c1-48)
    out=$src/perf/results/$(date +%F)-$slug
    [ -e "$out" ] && out=$out-$(date +%H%M%S)
fi
mkdir -p "$out"
{
    echo "device:   ${name:-unknown} (selector $device)"
    [ -s "$stage/peak.csv" ] && echo "peak:     $(awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i } NR == 2 { print $c["peak_gflops"] " GFLOPS, " $c["peak_gbps"] " GB/s (measured)" }' "$stage/peak.csv")"
    grep -E '^(prefix|pkg-config|NVIDIA ICD|no libnvidia|--debs)' "$setup_log" | sed 's/^/setup:    /'
    echo
    echo "step       status                     wall"
    cat "$steps"
    if [ -f "$stage/tests.log" ]; then
        echo
        grep -E 'tests passed|tests failed' "$stage/tests.log" | sed 's/^/tests:    /'
        sed -n '/The following tests FAILED/,$p' "$stage/tests.log" | grep -E '^[[:space:]]+[0-9]+ - ' |
            sed 's/^[[:space:]]*/failed:   /'
        echo "slowest:  $(grep -E 'Test +#[0-9]+:' "$stage/tests.log" | sed -E 's/.*: ([^ ]+) .* ([0-9.]+) sec.*/\2 \1/' |
            sort -rn | head -5 | awk '{ printf "%s %s s, ", $2, $1 }' | sed 's/, $//')"
    fi
    # CSV fields hold commas ("n8 3x224x224 -> 1000, 167 layers"): parse them as CSV.
    if command -v python3 >/dev/null 2>&1; then
        python3 - "$stage" <<'PY'
import collections, csv, os, sys
for name in ("anchors", "net_infer", "net_train"):
    path = os.path.join(sys.argv[1], name + ".csv")
    if not os.path.exists(path) or os.path.getsize(path) == 0:
        continue
    rows = list(csv.DictReader(open(path)))
    count = collections.Counter(r["status"] for r in rows)
    print("\n%s: %d rows (%s)" % (name, len(rows), ", ".join("%s %d" % kv for kv in sorted(count.items()))))
    for r in rows:
        if name == "anchors":
            if r["algo"] == "auto" and r["status"] == "ok":
                print("  %-18s %-24s %-14s %9s ms %8s GFLOPS" % (r["op"], r["shape"], r["algo"], r["ms"], r["gflops"]))
        else:
            print("  %-9s %-13s %-13s %-6s %9s ms %8s images/s" % (r["op"], r["shape"], r["algo"], r["status"], r["ms"], r["images_per_s"]))
PY
    fi
    echo
    echo "total:    $(($(date +%s) - t_start)) s; results in $out"
} >>"$summary"
cp -r "$stage"/. "$out"/ && rm -rf "$stage"
rm -f "$out/.steps"
cat "$out/summary.txt"

# The device tool brings back at most 8 files of 16 MiB from $OUT: one archive + the summary.
if [ -n "${OUT:-}" ]; then
    base=$(basename "$out")
    tar -C "$(dirname "$out")" -czf "$OUT/gpu-check.tar.gz" "$base"
    cp "$out/summary.txt" "$OUT/summary.txt"
    if [ "$(stat -c %s "$OUT/gpu-check.tar.gz")" -gt $((16 * 1024 * 1024)) ]; then
        tar -C "$(dirname "$out")" -czf "$OUT/gpu-check.tar.gz" --exclude='*.log' "$base"
        for f in "$out"/*.log; do tail -c 1M "$f"; done | gzip >"$OUT/logs-tail.gz"
    fi
    echo "gpu-check: packed into \$OUT: $(ls "$OUT" | paste -sd' ' -)"
fi
exit $failed
