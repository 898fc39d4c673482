# Flotilla agent image: one per device; converges the device's Docker Engine to the
# hub's desired state. Local state (desired state, outbox, log ledger) in /var/lib/flotilla-agent.
#
# Built by docker/build-images.sh (amd64 and arm64, pushed as one manifest list), from a
# base image it makes itself (docker/base-rootfs.sh: Node plus the few libraries Node
# links against, taken from Debian's packages) and a release bundle
# (docker/release-bundle.sh). Every step is a COPY, so it builds for another
# architecture without emulation. By hand, for one architecture:
#
#   docker/build-images.sh                      # or, step by step:
#   docker/release-bundle.sh arm64
#   mkdir ctx && tar xzf dist/bundles/flotilla-*-linux-arm64.tar.gz -C ctx
#   DOCKER_BUILDKIT=0 docker build --platform linux/arm64 \
#     --build-arg BASE=flotilla/node-base:<tag printed by build-images.sh> \
#     -f docker/agent.Dockerfile -t flotilla-agent ctx
#
# Running it:
#
#   docker run -d --name flotilla-agent --restart unless-stopped \
#     --group-add "$(stat -c %g /var/run/docker.sock)" \
#     -v /var/run/docker.sock:/var/run/docker.sock \
#     -v flotilla-agent:/var/lib/flotilla-agent -v /dev/shm:/dev/shm \
#     -e FLOTILLA_HUB_URL=mqtt://hub.example:1883 -e FLOTILLA_DEVICE_ID=roof-gw-1 \
#     flotilla-agent
#
# The agent runs as uid 10001 (user flotilla), not root: it reaches the engine through
# the mounted socket, and `--group-add` gives it the socket's group (docker, whose
# number differs from host to host, hence the stat). Access to that socket is
# root-equivalent on the host, so this limits what a bug in the agent's own process can
# touch, not what the engine will do for it. A socket owned by root:root (no docker
# group) needs `--user 0` instead. The host's /dev/shm: the agent saves its log ledger
# there before each log batch (RAM, not the SD card), and a container's own /dev/shm does
# not outlive a restart of the container. Containers the agent starts are the host's: host
# paths in app specs (volumes, devices) are paths on the host.
ARG BASE=flotilla/node-base
FROM ${BASE}
ENV NODE_ENV=production \
    FLOTILLA_AGENT_DATA_DIR=/var/lib/flotilla-agent \
    FLOTILLA_HUB_URL=mqtt://127.0.0.1:1883
# FLOTILLA_DEVICE_ID: this device's id; unset, the agent uses the host name, which in a
# container is the container's: set it (or pass --device-id).
# flotilla/: an unpacked release bundle (its `node` may be a link to the base's /usr/local/bin/node).
COPY flotilla /opt/flotilla
COPY --chown=10001:10001 data /var/lib/flotilla-agent
USER 10001:10001
VOLUME ["/var/lib/flotilla-agent"]
ENTRYPOINT ["/usr/local/bin/node", "/opt/flotilla/dist/cli/bin.js"]
CMD ["agent"]
