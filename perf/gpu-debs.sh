#!/bin/sh
# perf/gpu-debs.sh: download, here where apt works, the Debian 12 .deb files that a machine
# without network or package mirror needs to build and run clcnn (perf/gpu-check.sh --debs).
#
#   perf/gpu-debs.sh [--toolchain] [DIR]      (default DIR: .gpu-debs, ignored by git)
#
#   --toolchain   also gcc-12, binutils and the C library headers, for a machine without a
#                 C compiler (gpu-check.sh uses them only when it finds no cc there)
#
# What comes: the libraries clcnn links (OpenCL ICD loader and headers, CLBlast, zlib,
# jansson, libpng, protobuf-c), protoc-c and the onnx.proto of libonnx-dev, cmocka for the
# tests, pkgconf, cmake and clinfo, each with the libraries they need, as far as those are
# not part of every glibc system (the C and C++ runtime, Perl and the like never come: the
# target's own must be used). Nothing is installed here: `apt-get download` only.
# gpu-check.sh unpacks them with `dpkg -x` into a private prefix; the system there is
# never touched. DIR/manifest.txt lists package, version and size.
set -eu

toolchain=0
dir=
for a in "$@"; do
    case $a in
    --toolchain) toolchain=1 ;;
    -h | --help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "perf/gpu-debs.sh: unknown option $a" >&2; exit 2 ;;
    *) dir=$a ;;
    esac
done
here=$(cd "$(dirname "$0")/.." && pwd)
dir=${dir:-$here/.gpu-debs}

# The packages asked for; their dependencies are added below.
want="ocl-icd-libopencl1 ocl-icd-opencl-dev opencl-headers opencl-c-headers
  libclblast1 libclblast-dev libcmocka0 libcmocka-dev zlib1g zlib1g-dev
  libjansson4 libjansson-dev libpng16-16 libpng-dev libprotobuf-c1 libprotobuf-c-dev
  protobuf-c-compiler pkgconf pkgconf-bin libpkgconf3 cmake cmake-data clinfo"
# libonnx-dev is wanted for onnx.proto alone: its libraries are not.
extra="libonnx-dev"
toolchain_pkgs="gcc gcc-12 cpp-12 libgcc-12-dev libc6-dev libc-dev-bin linux-libc-dev
  libcrypt-dev binutils binutils-x86-64-linux-gnu libbinutils libctf0 libctf-nobfd0
  libgprofng0 libisl23 libmpc3 libmpfr6 libgmp10 libcc1-0 libgomp1 libitm1 libatomic1
  libasan8 liblsan0 libtsan2 libubsan1 libquadmath0 libhwasan0 libzstd1 libjansson4 make"
# Never brought: what every glibc system has, and must keep its own of (a second libc or
# libstdc++ on the library path breaks every program), and what is only there for
# maintainer scripts, which dpkg -x never runs.
never='^(libc6|libc6-dev|libc-dev-bin|libgcc-s1|libstdc\+\+6|gcc-12-base|linux-libc-dev|libcrypt1|libcrypt-dev|libnsl2|libnsl-dev|libtirpc.*|rpcsvc-proto|libselinux1|libsystemd0|libelogind0|procps|libproc2-0|perl|perl-base|perl-modules-.*|libperl.*|lib.*-perl|dpkg|tar|init-system-helpers|usrmerge|usr-is-merged|libonnx1|libonnxifi|debconf)$'

command -v apt-get >/dev/null || { echo "perf/gpu-debs.sh: needs apt-get (Debian 12)" >&2; exit 1; }
mkdir -p "$dir"
# shellcheck disable=SC2086
pkgs=$(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts \
    --no-breaks --no-replaces --no-enhances $want |
    grep -E '^[a-z0-9]' | sort -u | grep -Ev "$never" || true)
pkgs="$pkgs $extra"
if [ "$toolchain" = 1 ]; then
    pkgs="$pkgs $toolchain_pkgs"
fi
pkgs=$(printf '%s\n' $pkgs | grep -v '^<' | sort -u)
# Virtual packages (no candidate of their own) drop out here.
# shellcheck disable=SC2086
real=$(apt-cache show --no-all-versions $pkgs 2>/dev/null | awk '/^Package:/ { print $2 }' | sort -u)
echo "perf/gpu-debs.sh: $(echo $real | wc -w) packages into $dir" >&2
# shellcheck disable=SC2086
(cd "$dir" && rm -f ./*.deb && apt-get download -q $real >/dev/null)

{
    echo "# downloaded $(date -u '+%F %T UTC') on $(. /etc/os-release && echo "$PRETTY_NAME"), toolchain=$toolchain"
    for f in "$dir"/*.deb; do
        dpkg-deb --show --showformat="\${Package} \${Version} $(stat -c %s "$f")\n" "$f"
    done
} >"$dir/manifest.txt"
# Git must not carry them (the device tool's carry list names the folder).
case $dir in
"$here"/*)
    rel=/${dir#"$here"/}
    if ! git -C "$here" check-ignore -q "$dir/x.deb" 2>/dev/null; then
        echo "$rel/" >>"$(git -C "$here" rev-parse --git-path info/exclude)"
    fi
    ;;
esac
echo "perf/gpu-debs.sh: $(du -sh "$dir" | cut -f1) in $(ls "$dir"/*.deb | wc -l) files" >&2
