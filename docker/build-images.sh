#!/usr/bin/env bash
# Builds Flotilla's hub and agent images for linux/amd64 and linux/arm64 and pushes each
# as one multi-arch manifest list:
#
#   docker/build-images.sh
#   -> ${REGISTRY}/flotilla/{hub,agent}:<version> and :latest                      (manifest lists)
#      ${REGISTRY}/flotilla/{hub,agent}:<version>-<arch>                          (one image each)
#
# Steps, each cached and skipped when its inputs are unchanged (run it twice: the second
# run builds nothing):
#   1. the release bundles, docker/release-bundle.sh <arch> (better-sqlite3 cross-compiled for arm64);
#   2. a base image per architecture, docker/base-rootfs.sh <arch> (Node and the libraries it
#      needs, from Debian's packages), loaded with an image config written here: `docker import
#      --platform` is ignored by an engine without multi-platform support, which would label
#      an arm64 filesystem amd64;
#   3. the images, docker/{hub,agent}.Dockerfile with the legacy builder: only COPY steps,
#      so nothing runs under emulation, and the architecture comes from the base;
#   4. push, then `docker manifest create` / `push`.
#
# Environment: FLOTILLA_IMAGE_REGISTRY (default 127.0.0.1:5000; empty: build only, no push),
# FLOTILLA_CACHE_DIR (default /var/cache/flotilla), FLOTILLA_IMAGE_ARCHS (default "amd64 arm64").
# Running arm64 images on an amd64 machine needs qemu-user-static with binfmt registered
# (`update-binfmts --enable qemu-aarch64`); building them does not.
set -euo pipefail

REGISTRY="${FLOTILLA_IMAGE_REGISTRY-127.0.0.1:5000}"
read -r -a ARCHS <<<"${FLOTILLA_IMAGE_ARCHS:-amd64 arm64}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
say() { printf "[images %ds] %s\n" "$SECONDS" "$*"; }
die() {
  printf '[images] error: %s\n' "$*" >&2
  exit 1
}
sha() { sha256sum | cut -c1-16; }

VERSION="$(node -p 'require("./package.json").version')"
NODE_VERSION="${FLOTILLA_NODE_VERSION:-20.20.2}"
export FLOTILLA_NODE_VERSION="$NODE_VERSION"
REPO="${REGISTRY:+${REGISTRY}/}flotilla"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/flotilla-images.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
docker version >/dev/null 2>&1 || die "no Docker Engine answers (is dockerd running?)"

# An image's input key, kept in a label: an image whose label matches is not built again.
label_of() { docker image inspect --format '{{ index .Config.Labels "org.flotilla.inputs" }}' "$1" 2>/dev/null || true; }

# Loads a root filesystem tarball as a one-layer image whose config says the right architecture.
load_base() {
  local arch="$1" rootfs="$2" tag="$3" dir diff config
  dir="${WORK}/base-${arch}"
  mkdir -p "$dir"
  ln -s "$rootfs" "${dir}/layer.tar"
  diff="$(sha256sum "$rootfs" | cut -d' ' -f1)"
  cat >"${dir}/config.json" <<EOF
{"architecture":"${arch}","os":"linux","created":"2020-01-01T00:00:00Z",
 "config":{"Env":["PATH=/usr/local/bin:/usr/bin"],"User":"10001:10001","WorkingDir":"/",
   "Labels":{"org.flotilla.inputs":"${tag##*-}","org.opencontainers.image.description":"Node ${NODE_VERSION} and the libraries it needs, from Debian 12 packages"}},
 "rootfs":{"type":"layers","diff_ids":["sha256:${diff}"]},
 "history":[{"created":"2020-01-01T00:00:00Z","created_by":"docker/base-rootfs.sh ${arch}"}]}
EOF
  config="$(sha256sum "${dir}/config.json" | cut -d' ' -f1)"
  mv "${dir}/config.json" "${dir}/${config}.json"
  printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":["layer.tar"]}]\n' "$config" "$tag" >"${dir}/manifest.json"
  tar -C "$dir" -chf - . | docker load -q >/dev/null
}

declare -A BASE_TAG
for arch in "${ARCHS[@]}"; do
  # 1. bundle (npm run build once, for the first architecture)
  if [[ "$arch" == "${ARCHS[0]}" ]]; then
    docker/release-bundle.sh "$arch"
  else
    FLOTILLA_BUNDLE_SKIP_BUILD=1 docker/release-bundle.sh "$arch"
  fi

  # 2. base
  rootfs="$(docker/base-rootfs.sh "$arch")"
  key="$(basename "$(dirname "$rootfs")")" # <arch>-<hash>
  tag="flotilla/node-base:${NODE_VERSION}-${key}"
  BASE_TAG[$arch]="$tag"
  if docker image inspect "$tag" >/dev/null 2>&1; then
    say "base ${tag}: present"
  else
    say "base ${tag}: loading"
    load_base "$arch" "$rootfs" "$tag"
  fi
  got="$(docker image inspect --format '{{.Os}}/{{.Architecture}}' "$tag")"
  [[ "$got" == "linux/${arch}" ]] || die "${tag} says ${got}, not linux/${arch}"
done

# 3. images
for arch in "${ARCHS[@]}"; do
  bundle="dist/bundles/flotilla-${VERSION}-linux-${arch}.tar.gz"
  bundle_key="$(cat "dist/bundles/.flotilla-${VERSION}-linux-${arch}.key")"
  ctx=""
  for image in hub agent; do
    dockerfile="docker/${image}.Dockerfile"
    tag="${REPO}/${image}:${VERSION}-${arch}"
    inputs="$(printf '%s\n' "$bundle_key" "${BASE_TAG[$arch]}" "$(sha256sum "$dockerfile" | cut -d' ' -f1)" | sha)"
    if [[ "$(label_of "$tag")" == "$inputs" ]]; then
      say "${tag}: up to date"
      continue
    fi
    if [[ -z "$ctx" ]]; then
      # The context: the unpacked bundle, its node a link to the base's (one copy in the image), and an empty data dir.
      ctx="${WORK}/ctx-${arch}"
      mkdir -p "${ctx}/data"
      tar xzf "$bundle" -C "$ctx"
      rm "${ctx}/flotilla/node"
      ln -s /usr/local/bin/node "${ctx}/flotilla/node"
    fi
    say "${tag}: building"
    DOCKER_BUILDKIT=0 docker build -q --platform "linux/${arch}" --build-arg "BASE=${BASE_TAG[$arch]}" \
      --label "org.flotilla.inputs=${inputs}" --label "org.opencontainers.image.version=${VERSION}" \
      -f "$dockerfile" -t "$tag" "$ctx" >"${WORK}/build.log" 2>&1 || {
      cat "${WORK}/build.log" >&2
      die "docker build of ${tag} failed"
    }
    got="$(docker image inspect --format '{{.Os}}/{{.Architecture}}' "$tag")"
    [[ "$got" == "linux/${arch}" ]] || die "${tag} says ${got}, not linux/${arch}"
  done
  rm -rf "${WORK}/ctx-${arch}"
done

# 4. push and manifest lists
if [[ -z "$REGISTRY" ]]; then
  say "FLOTILLA_IMAGE_REGISTRY is empty: not pushing"
else
  for image in hub agent; do
    list="${REPO}/${image}:${VERSION}"
    latest="${REPO}/${image}:latest"
    members=()
    for arch in "${ARCHS[@]}"; do
      docker push -q "${list}-${arch}" >/dev/null || die "docker push ${list}-${arch} failed"
      members+=("${list}-${arch}")
    done
    # The version's list, and latest (what docker/compose.yaml runs by default).
    for name in "$list" "$latest"; do
      docker manifest rm "$name" >/dev/null 2>&1 || true
      docker manifest create --insecure "$name" "${members[@]}" >/dev/null
      docker manifest push --insecure --purge "$name" >/dev/null
    done
    platforms="$(docker manifest inspect --insecure "$list" |
      node -e 'const l = JSON.parse(require("fs").readFileSync(0, "utf8")); console.log(l.manifests.map((m) => m.platform.os + "/" + m.platform.architecture).sort().join(" "))')"
    say "${list}: ${platforms}"
  done
fi

for arch in "${ARCHS[@]}"; do
  sizes="$(for t in "${BASE_TAG[$arch]}" "${REPO}/hub:${VERSION}-${arch}" "${REPO}/agent:${VERSION}-${arch}"; do
    printf '%s %s MB; ' "$t" "$(($(docker image inspect --format '{{.Size}}' "$t") / 1000000))"
  done)"
  say "${arch}: ${sizes%; }"
done
