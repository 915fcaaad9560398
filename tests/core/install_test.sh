#!/usr/bin/env bash
# Installs kura into a scratch prefix and builds tests/core/host.c against
# the INSTALLED libkura-core, as a C or C++ server would: with pkg-config
# kura-core, and with find_package(kura) and its kura::core target. The host
# has no Lua runtime: ldd must show neither liblua nor libkura.so. Each build
# runs the host against the backends given.
# Usage: install_test.sh BUILD_DIR SOURCE_DIR BACKEND...
set -euo pipefail
build=${1:?usage: install_test.sh BUILD_DIR SOURCE_DIR BACKEND...}
src=${2:?usage: install_test.sh BUILD_DIR SOURCE_DIR BACKEND...}
shift 2
[ $# -gt 0 ] || { echo "no backend given"; exit 2; }
prefix=$(mktemp -d /tmp/kura-core-install.XXXXXX)
trap 'rm -rf "$prefix"' EXIT
cc=${CC:-cc}
host=$src/tests/core/host.c

step() { printf '== %s\n' "$*"; }

# No liblua and no libkura.so (the runtime) among what $1 loads.
no_lua() {
  ldd "$1" > "$prefix/ldd.txt"
  grep -q "$prefix/lib/libkura-core.so.0" "$prefix/ldd.txt" \
    || { echo "$1 does not use the installed libkura-core.so"; cat "$prefix/ldd.txt"; exit 1; }
  if grep -Eq 'liblua|libkura\.so' "$prefix/ldd.txt"; then
    echo "$1 loads Lua or the runtime:"; cat "$prefix/ldd.txt"; exit 1
  fi
}

step "cmake --install $build --prefix $prefix"
cmake --install "$build" --prefix "$prefix" >/dev/null
for f in include/kura_client.h lib/pkgconfig/kura-core.pc lib/libkura-core.so; do
  [ -e "$prefix/$f" ] || { echo "missing after install: $f"; exit 1; }
done
soname=$(objdump -p "$prefix/lib/libkura-core.so" | awk '$1 == "SONAME" { print $2 }')
[ "$soname" = "libkura-core.so.0" ] || { echo "unexpected SONAME '$soname'"; exit 1; }
if ldd "$prefix/lib/libkura-core.so" | grep -q liblua; then
  echo "libkura-core.so loads liblua"; exit 1
fi
bad=$(nm -D --defined-only "$prefix/lib/libkura-core.so" | awk 'NF >= 3 { print $3 }' \
      | grep -Ev '^kura_[A-Za-z0-9_]+$' || true)
[ -z "$bad" ] || { echo "libkura-core.so exports internal names:"; printf '  %s\n' $bad; exit 1; }

export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
step "pkg-config: $(pkg-config --modversion kura-core), $(pkg-config --cflags --libs kura-core)"
$cc -std=c11 -Wall -Wextra -Werror -D_POSIX_C_SOURCE=200809L -o "$prefix/host_pc" "$host" \
  $(pkg-config --cflags --libs kura-core) -Wl,-rpath,"$prefix/lib"
no_lua "$prefix/host_pc"
"$prefix/host_pc" "$@"

step "find_package(kura): kura::core"
mkdir -p "$prefix/consumer"
cat > "$prefix/consumer/CMakeLists.txt" <<CMAKE
cmake_minimum_required(VERSION 3.16)
project(kura_core_consumer C)
find_package(kura 0.1 REQUIRED)
find_package(PkgConfig REQUIRED)
pkg_check_modules(UV REQUIRED IMPORTED_TARGET libuv)
add_executable(host_cmake "$host")
target_compile_definitions(host_cmake PRIVATE _POSIX_C_SOURCE=200809L)
target_link_libraries(host_cmake PRIVATE kura::core PkgConfig::UV)
CMAKE
cmake -S "$prefix/consumer" -B "$prefix/consumer/build" -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$prefix/consumer/build" -j2 >/dev/null
no_lua "$prefix/consumer/build/host_cmake"
"$prefix/consumer/build/host_cmake" "$@"
step "ok"
