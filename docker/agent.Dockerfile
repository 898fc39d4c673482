# Flotilla agent image: one per device; converges the device's Docker Engine to the
# hub's desired state. Local state (desired state, outbox) in /var/lib/flotilla-agent.
#
# NOT BUILT on the project's development and CI machines: no public image registry is
# reachable there, so node:20-bookworm-slim cannot be pulled. Build it where Docker Hub
# (or a mirror: --build-arg NODE_IMAGE=mirror.example/node:20-bookworm-slim) is reachable,
# from the repository root:
#
#   docker build -f docker/agent.Dockerfile -t flotilla-agent .
#   docker run -d --name flotilla-agent --restart unless-stopped \
#     -v /var/run/docker.sock:/var/run/docker.sock \
#     -v flotilla-agent:/var/lib/flotilla-agent \
#     -e FLOTILLA_HUB_URL=mqtt://hub.example:1883 -e FLOTILLA_DEVICE_ID=roof-gw-1 \
#     flotilla-agent
#
# The agent talks to the host's Docker Engine through the mounted socket, so it runs as
# root (access to that socket is root-equivalent anyway). Containers it starts are the
# host's: host paths in app specs (volumes, devices) are paths on the host.
#
# The build stages need the npm registry; better-sqlite3 falls back to compiling from
# source (python3, make, g++) when its prebuilt binary cannot be downloaded.
ARG NODE_IMAGE=node:20-bookworm-slim

# ---- toolchain: compilers for native addons (better-sqlite3), lockfile ----------------
FROM ${NODE_IMAGE} AS toolchain
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./

# ---- build: all dependencies, TypeScript -> dist/ ---------------------------------------
FROM toolchain AS build
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY shared ./shared
COPY broker ./broker
COPY agent ./agent
COPY cli ./cli
# dist/package.json: "type": "module" for dist/, and the version the CLI and agent report
# (they read package.json relative to their own files). dist/cli/flotilla.js: the
# executable; in the source tree it runs main.ts through tsx, here it runs compiled main.js.
RUN npx tsc -p tsconfig.build.json \
 && cp package.json dist/package.json \
 && printf '%s\n' '#!/usr/bin/env node' "import { main } from './main.js';" 'await main();' \
      > dist/cli/flotilla.js \
 && node dist/cli/flotilla.js --version

# ---- production dependencies only --------------------------------------------------------
FROM toolchain AS prod-deps
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# ---- runtime -------------------------------------------------------------------------------
FROM ${NODE_IMAGE}
ENV NODE_ENV=production \
    FLOTILLA_AGENT_DATA_DIR=/var/lib/flotilla-agent \
    FLOTILLA_HUB_URL=mqtt://127.0.0.1:1883
# FLOTILLA_DEVICE_ID: this device's id; unset, the agent uses the host name, which in a
# container is the container's: set it (or pass --device-id).
WORKDIR /app
COPY package.json ./
COPY --from=prod-deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
RUN mkdir -p /var/lib/flotilla-agent
VOLUME ["/var/lib/flotilla-agent"]
ENTRYPOINT ["node", "dist/cli/flotilla.js"]
CMD ["agent"]
