#!/usr/bin/env bash
# Install clcnn from a build tree into a temporary prefix and build a tiny consumer
# four ways: CMake find_package(clcnn) with clcnn::clcnn and clcnn::clcnn_static, and
# pkg-config clcnn (shared, and --static). Each consumer is run once.
#   usage: tests/install_check.sh BUILD_DIR [PREFIX]
# Exit status 0 when all four build and run.
set -euo pipefail
build=$(cd "${1:?usage: install_check.sh BUILD_DIR [PREFIX]}" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/clcnn-install-check.XXXXXX")
trap 'rm -rf "$work"' EXIT
prefix=${2:-$work/prefix}

cmake --install "$build" --prefix "$prefix" >"$work/install.log" ||
  { cat "$work/install.log"; exit 1; }

mkdir -p "$work/app"
cat >"$work/app/app.c" <<'C'
#include <clcnn/clcnn.h>
#include <stdio.h>

int main(void) {
    size_t n = 0;
    clcnn_status s = clcnn_device_list(NULL, 0, &n);
    printf("clcnn %s: %zu devices (%s)\n", clcnn_version(), n, clcnn_status_str(s));
    return 0;
}
C
cat >"$work/app/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.16)
project(clcnn_consumer C)
find_package(clcnn 0.1 REQUIRED)
add_executable(app_shared app.c)
target_link_libraries(app_shared PRIVATE clcnn::clcnn)
add_executable(app_static app.c)
target_link_libraries(app_static PRIVATE clcnn::clcnn_static)
CM

echo "== find_package(clcnn)"
cmake -S "$work/app" -B "$work/app/build" -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_BUILD_TYPE=Release >"$work/cmake.log" 2>&1 || { cat "$work/cmake.log"; exit 1; }
cmake --build "$work/app/build" -j2 >"$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
"$work/app/build/app_shared" # CMake puts the install libdir into the build RPATH
"$work/app/build/app_static"

echo "== pkg-config clcnn"
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig:$prefix/lib/$(gcc -print-multiarch 2>/dev/null || true)/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
cc -o "$work/app_pc" "$work/app/app.c" $(pkg-config --cflags --libs clcnn)
libdir=$(pkg-config --variable=libdir clcnn)
LD_LIBRARY_PATH="$libdir" "$work/app_pc"
# The static archive: link it explicitly (the shared library would win with -lclcnn).
cc -o "$work/app_pc_static" "$work/app/app.c" $(pkg-config --cflags clcnn) \
  "$libdir/libclcnn.a" $(pkg-config --static --libs-only-l clcnn | sed 's/-lclcnn//')
if ldd "$work/app_pc_static" | grep -q libclcnn; then
  echo "static consumer links libclcnn.so" >&2; exit 1
fi
"$work/app_pc_static"
echo "install check: OK"
