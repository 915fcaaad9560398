#!/usr/bin/env bash
# Installs kura into a scratch prefix and builds the example game server
# against the INSTALLED library, the way a game studio would: with pkg-config
# (shared and static libkura) and with find_package(kura) from CMake. Each
# build runs the scripted match.
# Usage: install_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=${1:?usage: install_test.sh BUILD_DIR SOURCE_DIR}
src=${2:?usage: install_test.sh BUILD_DIR SOURCE_DIR}
prefix=$(mktemp -d /tmp/kura-install.XXXXXX)
trap 'rm -rf "$prefix"' EXIT
cc=${CC:-cc}
game=$src/tests/embed/game_server.c
match=$src/tests/embed/match.lua

step() { printf '== %s\n' "$*"; }

step "cmake --install $build --prefix $prefix"
cmake --install "$build" --prefix "$prefix" >/dev/null
for f in include/kura.h lib/libkura.a lib/pkgconfig/kura.pc lib/cmake/kura/kuraConfig.cmake; do
  [ -f "$prefix/$f" ] || { echo "missing after install: $f"; exit 1; }
done
soname=$(objdump -p "$prefix/lib/libkura.so" | awk '$1 == "SONAME" { print $2 }')
[ "$soname" = "libkura.so.0" ] || { echo "unexpected SONAME '$soname'"; exit 1; }

export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
step "pkg-config: $(pkg-config --modversion kura), $(pkg-config --cflags --libs kura)"
$cc -std=c11 -Wall -Wextra -Werror -o "$prefix/game_shared" "$game" \
  $(pkg-config --cflags --libs kura) -Wl,-rpath,"$prefix/lib"
ldd "$prefix/game_shared" > "$prefix/ldd.txt"
grep -q "$prefix/lib/libkura.so.0" "$prefix/ldd.txt" \
  || { echo "game_shared does not use the installed libkura.so"; exit 1; }
"$prefix/game_shared" "$match"

step "pkg-config kura-static: $(pkg-config --libs kura-static)"
$cc -std=c11 -Wall -Wextra -Werror -o "$prefix/game_static" "$game" \
  $(pkg-config --cflags --libs kura-static)
ldd "$prefix/game_static" > "$prefix/ldd.txt"
if grep -q libkura "$prefix/ldd.txt"; then
  echo "game_static should not need libkura.so"; exit 1
fi
"$prefix/game_static" "$match"

step "find_package(kura): kura::kura and kura::kura_static"
mkdir -p "$prefix/consumer"
cat > "$prefix/consumer/CMakeLists.txt" <<CMAKE
cmake_minimum_required(VERSION 3.16)
project(kura_consumer C)
find_package(kura 0.1 REQUIRED)
add_executable(game_cmake "$game")
target_link_libraries(game_cmake PRIVATE kura::kura)
add_executable(game_cmake_static "$game")
target_link_libraries(game_cmake_static PRIVATE kura::kura_static)
CMAKE
cmake -S "$prefix/consumer" -B "$prefix/consumer/build" -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$prefix/consumer/build" -j2 >/dev/null
"$prefix/consumer/build/game_cmake" "$match"
"$prefix/consumer/build/game_cmake_static" "$match"
step "ok"
