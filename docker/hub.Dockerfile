# Flotilla hub image: embedded MQTT broker (TCP 1883, WebSocket 8083), dispatcher,
# HTTP API (7070), SQLite in /var/lib/flotilla.
#
# Built by docker/build-images.sh (amd64 and arm64, pushed as one manifest list), from a
# base image it makes itself (docker/base-rootfs.sh: Node plus the few libraries Node
# links against, taken from Debian's packages) and a release bundle
# (docker/release-bundle.sh). Every step is a COPY, so it builds for another
# architecture without emulation. By hand, for one architecture:
#
#   docker/build-images.sh                      # or, step by step:
#   docker/release-bundle.sh amd64
#   mkdir ctx && tar xzf dist/bundles/flotilla-*-linux-amd64.tar.gz -C ctx
#   DOCKER_BUILDKIT=0 docker build --platform linux/amd64 \
#     --build-arg BASE=flotilla/node-base:<tag printed by build-images.sh> \
#     -f docker/hub.Dockerfile -t flotilla-hub ctx
#
#   docker run -d -p 1883:1883 -p 8083:8083 -p 7070:7070 -v flotilla-hub:/var/lib/flotilla flotilla-hub
#
# The image has no shell: `docker exec <hub> /usr/local/bin/node /opt/flotilla/dist/cli/bin.js ...`
# runs the CLI inside it.
ARG BASE=flotilla/node-base
FROM ${BASE}
ENV NODE_ENV=production \
    FLOTILLA_DATA_DIR=/var/lib/flotilla
# flotilla/: an unpacked release bundle (its `node` may be a link to the base's /usr/local/bin/node).
COPY flotilla /opt/flotilla
COPY --chown=10001:10001 data /var/lib/flotilla
USER 10001:10001
VOLUME ["/var/lib/flotilla"]
# 1883 MQTT/TCP, 8083 MQTT over WebSocket, 7070 HTTP API
EXPOSE 1883 8083 7070
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/node", "-e", "fetch('http://127.0.0.1:' + (process.env.FLOTILLA_HTTP_PORT || 7070) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# The node flag caps the hub's young generation (broker/v8-young-generation.ts); V8 reads it only at start.
ENTRYPOINT ["/usr/local/bin/node", "--max-semi-space-size=2", "/opt/flotilla/dist/cli/bin.js"]
CMD ["server", "--host", "0.0.0.0"]
