# Shared by scripts/run, scripts/test and scripts/bench/*: install what is
# missing from Debian's packages, then configure and build incrementally.
# Source it; it defines kura_install PKG... and kura_build DIR [cmake args...].

KURA_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

# Debian packages the build and the tests need.
KURA_BUILD_PKGS="gcc make cmake pkg-config liblua5.4-dev libuv1-dev libcurl4-openssl-dev libhiredis-dev protobuf-c-compiler libprotobuf-c-dev libnghttp2-dev"
# man-db and groff-base: the install test reads the man page with man -l.
KURA_TEST_PKGS="redis-server lua5.4 python3 openssl man-db groff-base"
# Node.js runs the Momento emulator and SDK check. A machine may already have
# it from elsewhere (e.g. NodeSource's nodejs, which bundles npm and conflicts
# with Debian's npm package): ask apt only for what is missing.
command -v node >/dev/null 2>&1 || KURA_TEST_PKGS="$KURA_TEST_PKGS nodejs"
command -v npm >/dev/null 2>&1 || KURA_TEST_PKGS="$KURA_TEST_PKGS npm"

kura_log() { printf 'kura: %s\n' "$*" >&2; }

# kura_install PKG...: apt-get install whichever of PKG are not installed.
kura_install() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
      sudo="sudo -n"
    else
      kura_log "missing Debian packages: ${missing[*]}"
      kura_log "install them as root:  apt-get install ${missing[*]}"
      kura_log "(this script runs apt-get itself when run as root or with password-less sudo)"
      return 1
    fi
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    kura_log "apt-get not found: install these packages by hand: ${missing[*]}"
    return 1
  fi
  kura_log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # An update first when the package lists are empty or stale.
  if ! $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/tmp/kura-apt.log 2>&1; then
    $sudo apt-get update -qq >>/tmp/kura-apt.log 2>&1 || true
    if ! $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >>/tmp/kura-apt.log 2>&1; then
      tail -20 /tmp/kura-apt.log >&2
      kura_log "apt-get install failed (log: /tmp/kura-apt.log)"
      return 1
    fi
  fi
}

# kura_build DIR [cmake args...]: configure once, build incrementally.
kura_build() {
  local dir=$1; shift
  if [ ! -f "$dir/CMakeCache.txt" ]; then
    cmake -S "$KURA_ROOT" -B "$dir" "$@" >"$dir.configure.log" 2>&1 || {
      cat "$dir.configure.log" >&2; kura_log "cmake configure failed"; return 1; }
  elif [ $# -gt 0 ]; then
    cmake "$dir" "$@" >"$dir.configure.log" 2>&1 || {
      cat "$dir.configure.log" >&2; kura_log "cmake configure failed"; return 1; }
  fi
  local jobs
  jobs=$(nproc 2>/dev/null || echo 2)
  cmake --build "$dir" -j "$jobs" >"$dir.build.log" 2>&1 || {
    cat "$dir.build.log" >&2; kura_log "build failed"; return 1; }
}
