# Flotilla hub image: embedded MQTT broker (TCP 1883, WebSocket 8083), dispatcher,
# HTTP API (7070), SQLite in /var/lib/flotilla.
#
# NOT BUILT on the project's development and CI machines: no public image registry is
# reachable there, so node:20-bookworm-slim cannot be pulled. Build it where Docker Hub
# (or a mirror: --build-arg NODE_IMAGE=mirror.example/node:20-bookworm-slim) is reachable,
# from the repository root:
#
#   docker build -f docker/hub.Dockerfile -t flotilla-hub .
#   docker run -d -p 1883:1883 -p 8083:8083 -p 7070:7070 -v flotilla-hub:/var/lib/flotilla flotilla-hub
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
    FLOTILLA_DATA_DIR=/var/lib/flotilla
WORKDIR /app
COPY package.json ./
COPY --from=prod-deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# The example dashboard the hub serves at /dashboard/ (broker/http/dashboard.ts finds it here).
COPY examples/dashboard ./examples/dashboard
RUN mkdir -p /var/lib/flotilla && chown node:node /var/lib/flotilla
USER node
VOLUME ["/var/lib/flotilla"]
# 1883 MQTT/TCP, 8083 MQTT over WebSocket, 7070 HTTP API
EXPOSE 1883 8083 7070
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:' + (process.env.FLOTILLA_HTTP_PORT || 7070) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"
ENTRYPOINT ["node", "dist/cli/flotilla.js"]
CMD ["server", "--host", "0.0.0.0"]
