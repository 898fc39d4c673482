#!/usr/bin/env bash
# Builds the image that plays a fresh Debian device in the install test
# (test/e2e/install/): Debian 12 made with debootstrap from Debian's own
# mirror (no public image registry is reachable here), with systemd as PID 1,
# curl and CA certificates — what a freshly flashed Debian or Raspberry Pi OS
# has — and nothing of Flotilla's.
#
#   docker/device-image.sh            builds (or finds) flotilla-test/device:bookworm
#
# The rootfs tarball is cached under ${FLOTILLA_CACHE_DIR:-/var/cache/flotilla}/device-rootfs/
# keyed by a hash of what goes into it (this script, suite, mirror, package list,
# architecture), so CI debootstraps once and imports the tarball afterwards; the
# image carries the same key as a label, so a second run with the image present
# does nothing at all.
#
# Knobs: DEBIAN_MIRROR (default http://deb.debian.org/debian), FLOTILLA_DEVICE_IMAGE (tag).
set -euo pipefail
export PATH="${PATH}:/usr/local/sbin:/usr/sbin:/sbin"

SUITE=bookworm
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
IMAGE="${FLOTILLA_DEVICE_IMAGE:-flotilla-test/device:bookworm}"
# systemd-sysv gives /sbin/init; dbus lets systemctl talk to PID 1; util-linux and
# coreutils are in minbase already (setpriv, df, sha256sum).
PACKAGES=systemd,systemd-sysv,dbus,curl,ca-certificates
ARCH="$(dpkg --print-architecture)"
CACHE_DIR="${FLOTILLA_CACHE_DIR:-/var/cache/flotilla}/device-rootfs"

key="$({
  cat "${BASH_SOURCE[0]}"
  printf '%s\n' "$SUITE" "$MIRROR" "$PACKAGES" "$ARCH"
} | sha256sum | cut -c1-16)"
tarball="${CACHE_DIR}/${SUITE}-${ARCH}-${key}.tar"

if [[ "$(docker image inspect --format '{{index .Config.Labels "flotilla.device.key"}}' "$IMAGE" 2>/dev/null || true)" == "$key" ]]; then
  echo "${IMAGE}: up to date (key ${key})"
  exit 0
fi

if [[ -f "$tarball" ]]; then
  echo "rootfs: cached ${tarball}"
else
  command -v debootstrap >/dev/null || {
    echo "debootstrap not found: apt-get install debootstrap" >&2
    exit 1
  }
  mkdir -p "$CACHE_DIR"
  work="$(mktemp -d "${TMPDIR:-/tmp}/flotilla-device.XXXXXX")"
  trap 'rm -rf "$work"' EXIT
  echo "rootfs: debootstrap ${SUITE} (${ARCH}) from ${MIRROR}"
  debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$work/rootfs" "$MIRROR" >"$work/debootstrap.log" 2>&1 || {
    tail -n 30 "$work/debootstrap.log" >&2
    echo "debootstrap failed (log above)" >&2
    exit 1
  }
  # A device image, not a build host: no package lists, no caches, and the
  # units a container has no use for (they only fail and slow the boot).
  rm -rf "$work/rootfs/var/lib/apt/lists/"* "$work/rootfs/var/cache/apt/"*.bin "$work/rootfs/var/cache/apt/archives/"*.deb
  for unit in systemd-timesyncd.service getty.target console-getty.service systemd-logind.service \
    systemd-remount-fs.service sys-kernel-config.mount sys-kernel-debug.mount sys-kernel-tracing.mount \
    systemd-firstboot.service; do
    ln -sf /dev/null "$work/rootfs/etc/systemd/system/${unit}"
  done
  echo 'flotilla-device' >"$work/rootfs/etc/hostname"
  : >"$work/rootfs/etc/machine-id"
  tar -C "$work/rootfs" --numeric-owner -cf "${tarball}.tmp" .
  mv "${tarball}.tmp" "$tarball"
  echo "rootfs: cached ${tarball} ($(du -h "$tarball" | cut -f1))"
fi

docker import \
  --change 'CMD ["/sbin/init"]' \
  --change "ENV container=docker" \
  --change "LABEL flotilla.device.key=${key}" \
  "$tarball" "$IMAGE" >/dev/null
echo "${IMAGE}: imported (key ${key})"
