# SPDX-License-Identifier: MIT
# .ci/deps.sh — sourced by the other scripts: installs the Debian packages a
# step needs, only those missing, so a fresh Debian 12 machine (even a
# minimal one with no compiler) works as root and a prepared one is not
# touched.
#
#   need_packages <package>...

need_packages() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' \
      || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "butler: missing Debian packages: ${missing[*]} (run as root to install them)" >&2
    return 1
  fi
  echo "butler: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  if [ -z "${BUTLER_APT_UPDATED:-}" ]; then
    apt-get update -qq >/dev/null || return 1
    export BUTLER_APT_UPDATED=1
  fi
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || return 1
}

# What building the runtime, the generator, the first-party servers and the
# examples needs (servers/bridge: nng for the bytes, mbedTLS for its HMAC).
BUILD_PACKAGES=(ca-certificates gcc make cmake pkg-config libc6-dev
                libevent-dev libcjson-dev libglib2.0-dev libnng-dev
                libmbedtls-dev)
# What the test suite adds: Criterion, the fuzzers' clang (and lld, which
# links the wire decoders' fuzzer without the runtime), the GUI example's
# GTK 4 and X server, the terminal demo's tmux, valgrind, the peers of the
# quick benchmark (g++ for its two C++ peers, moodycamel's queue and CAF),
# Doxygen for the API reference (built, with warnings as errors, whenever
# it is installed), man for checking butler-gen(1) and spin for the
# protocol models, openssl (the bridge's TLS test makes its certificates)
# and iproute2 (its network-namespace test).
TEST_PACKAGES=(libcriterion-dev clang libclang-rt-14-dev lld valgrind
               libgtk-4-dev xvfb xauth tmux libzmq3-dev libnng-dev libuv1-dev
               clang-format g++ liburcu-dev libconcurrentqueue-dev libcaf-dev
               doxygen man-db spin openssl iproute2)
# What building the Debian packages and trying them in a fresh chroot adds
# (tests/package/deb-fresh.sh): CPack's dpkg-shlibdeps and file, Doxygen
# for the API reference they ship, debootstrap for the chroot.
PACKAGE_PACKAGES=(dpkg-dev file doxygen debootstrap)

# Where the scripts build, unless told otherwise.
BUTLER_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
JOBS=$(nproc 2>/dev/null || echo 2)
