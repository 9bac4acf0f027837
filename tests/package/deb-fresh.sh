#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tests/package/deb-fresh.sh — the Debian packages work on a fresh Debian 12.
#
# Builds libbutler0 and libbutler-dev with CPack, installs them with apt-get
# into a fresh minimal Debian 12 chroot (so libevent, cJSON and the other
# dependencies come from Debian's mirror, as they would for a user), then,
# in the chroot, builds examples/ping_pong with CMake (find_package(butler))
# and with pkg-config and make (tests/package/pkgconfig/Makefile), and
# examples/tasks and examples/files with CMake (find_package(butler
# COMPONENTS ...), their specs importing the installed servers' specs),
# and runs them all.
#
#   tests/package/deb-fresh.sh [BUILD_DIR]     (as root; default build-deb/)
#
# The chroot starts as a copy of the template /var/tmp/fresh-debian (a
# debootstrap --variant=minbase bookworm, as /work/shared/tools/fresh-machine
# makes it), which this script only reads; it creates the template with
# debootstrap when there is none. The copy lives in /var/tmp/fresh-run-deb,
# this script's own run directory, and is left there for inspection.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
source "$root/.ci/deps.sh"
build=${1:-$root/build-deb}
template=/var/tmp/fresh-debian
run=/var/tmp/fresh-run-deb
say() { printf 'deb-fresh: %s\n' "$*"; }

if [ "$(id -u)" -ne 0 ]; then
  echo "deb-fresh: needs root (debootstrap, chroot, mount)" >&2
  exit 2
fi
need_packages "${BUILD_PACKAGES[@]}" "${PACKAGE_PACKAGES[@]}"

# 1. The packages, from a build for /usr (Debian's multiarch libdir).
say "building the packages in $build"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DCMAKE_INSTALL_PREFIX=/usr -DBUTLER_WERROR=ON \
      -DBUTLER_BUILD_TESTS=OFF -DBUTLER_BUILD_EXAMPLES=OFF \
      -DBUTLER_BUILD_BENCH=OFF -DBUTLER_BUILD_DOCS=ON >/dev/null
cmake --build "$build" -j "$JOBS" >/dev/null
rm -f "$build"/*.deb
(cd "$build" && cpack -G DEB >/dev/null)
debs=("$build"/*.deb)
[ "${#debs[@]}" -eq 2 ] || { echo "deb-fresh: want 2 packages, got: ${debs[*]}" >&2; exit 1; }
for d in "${debs[@]}"; do
  say "$(dpkg-deb -f "$d" Package Version Depends | tr '\n' ' ')"
done

# 2. A fresh Debian 12 of our own.
if [ ! -x "$template/bin/bash" ]; then
  say "no template in $template: debootstrap (a few minutes)"
  mirror=$(sed -n 's/^URIs: //p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n 1)
  [ -n "$mirror" ] || mirror=$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list)
  # Built aside and moved into place, so that no one ever copies half a
  # template.
  tmp=$(mktemp -d /var/tmp/fresh-debian.XXXXXX)
  debootstrap --variant=minbase bookworm "$tmp" "$mirror" >"$tmp.log" 2>&1 \
    || { echo "deb-fresh: debootstrap failed: see $tmp.log" >&2; exit 2; }
  rm -f "$tmp.log"
  if [ -e "$template" ]; then rm -rf "$tmp"; else mv "$tmp" "$template"; fi
fi

unmount() {
  local m
  for m in dev sys proc; do
    umount -l "$run/$m" 2>/dev/null || true
  done
}
trap unmount EXIT
unmount
# Never delete through a mount of the host's /dev, /sys or /proc.
if grep -q " $run/" /proc/mounts; then
  echo "deb-fresh: something is still mounted under $run" >&2
  exit 2
fi
rm -rf "$run"
cp -a "$template" "$run"
mkdir -p "$run/root/debs"
cp "${debs[@]}" "$run/root/debs/"
cp -a "$root/examples/ping_pong" "$run/root/ping_pong"
cp -a "$root/examples/tasks" "$run/root/tasks"
cp -a "$root/examples/files" "$run/root/files"
cp "$root/tests/package/pkgconfig/Makefile" "$run/root/ping_pong.mk"
cp /etc/resolv.conf "$run/etc/" 2>/dev/null || true
mount -t proc proc "$run/proc"
mount --rbind /sys "$run/sys"
mount --rbind /dev "$run/dev"

# 3. What a user does: install the packages, a compiler and CMake, build.
say "installing and building in $run"
chroot "$run" /usr/bin/env -i HOME=/root PATH=/usr/sbin:/usr/bin:/sbin:/bin \
  DEBIAN_FRONTEND=noninteractive /bin/bash -euo pipefail -c '
cd /root
# The chroot has no _apt sandbox user worth the warnings.
echo "APT::Sandbox::User \"root\";" >/etc/apt/apt.conf.d/99butler-sandbox
apt-get update -qq >/dev/null
# apt-get resolves the packages'"'"' dependencies from the mirror.
apt-get install -y -qq --no-install-recommends ./debs/*.deb >/dev/null
apt-get install -y -qq --no-install-recommends gcc libc6-dev make cmake >/dev/null
dpkg -l "libbutler*" | grep "^ii"
butler-gen --version
test -f /usr/share/doc/butler/html/index.html
test -f /usr/share/doc/butler/SPEC.md
test -f /usr/share/man/man1/butler-gen.1.gz

echo "--- CMake: find_package(butler), butler_generate()"
cmake -S ping_pong -B build-cmake >/dev/null
cmake --build build-cmake >/dev/null
head -n 1 build-cmake/butler_gen/ping_pong.butler.h
ldd build-cmake/ping_pong | grep libbutler
build-cmake/ping_pong | tail -n 1

echo "--- the first-party servers: find_package(butler COMPONENTS tasks files)"
test -f /usr/share/butler/specs/butler/tasks.json
test -f /usr/include/butler/servers/files.butler.h
for example in tasks files; do
  cmake -S $example -B build-$example >/dev/null
  cmake --build build-$example >/dev/null
  build-$example/${example}_demo | tail -n 1
done
ldd build-tasks/tasks_demo | grep libbutler_tasks

echo "--- pkg-config and make"
mkdir -p build-make
make -s -C build-make -f /root/ping_pong.mk SRC=/root/ping_pong
build-make/ping_pong | tail -n 1
build-make/ping_pong_static | tail -n 1
'
say "ok: the packages install and work on a fresh Debian 12"
