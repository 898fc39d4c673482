#!/usr/bin/env bash
# Builds flotilla-example/hello:1 without any registry: a scratch image with
# the static busybox from Debian's busybox-static package (about 2 MB).
set -euo pipefail
busybox=${BUSYBOX:-/bin/busybox}
if [ ! -x "$busybox" ]; then
  echo "no static busybox at $busybox: apt-get install busybox-static (or set BUSYBOX=…)" >&2
  exit 1
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cp "$busybox" "$dir/busybox"
cat > "$dir/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
CMD ["/bin/sh", "-c", "mkdir -p /www && echo \"$GREETING from $(hostname)\" > /www/index.html && httpd -f -p 80 -h /www & trap 'exit 0' TERM; wait"]
DOCKERFILE
docker build -q -t flotilla-example/hello:1 "$dir"
echo "built flotilla-example/hello:1"
