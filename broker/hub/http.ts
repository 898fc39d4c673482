/**
 * The hub's HTTP side: the API, telemetry and fleet follow streams, Prometheus,
 * registration, the web console, the dashboard, and the TLS listeners (mqtts, wss, https) when
 * the hub has a certificate.
 *
 * `ports` is filled in as listeners come up and read per request, so the
 * registration answer and the dashboard's config.json name the TLS ports that
 * exist only once the TLS listeners (which serve the same handler) are up.
 */
import { createServer as createHttpServer } from 'node:http';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Closer } from '../../shared/closer.js';
import { flotillaVersion, packageRoot } from '../../shared/version.js';
import type { Authenticator } from '../auth/authenticator.js';
import { httpAuth } from '../auth/http-auth.js';
import type { LoginDelay } from '../auth/login-delay.js';
import { registerRoute } from '../auth/register.js';
import type { HubConfig } from '../config.js';
import type { HubApi } from '../dispatcher/api.js';
import { FleetFeed } from '../fleet/feed.js';
import { fleetFollowRoute } from '../fleet/follow.js';
import { consoleRoutes } from '../http/console.js';
import { dashboardRoutes } from '../http/dashboard.js';
import { hubKeyRoute } from '../http/hub-key.js';
import { defaultReleasesDir, installRoutes, installScriptPath } from '../http/install.js';
import { metricsRoute } from '../http/metrics.js';
import { createHttpHandler } from '../http/server.js';
import { whoamiRoute } from '../http/whoami.js';
import { closeServer, listen } from '../mqtt/broker.js';
import type { SessionEndpoint } from '../remote/endpoint.js';
import type { SessionRegistry } from '../remote/session-registry.js';
import { deviceReportCounts } from '../telemetry/device-report-counts.js';
import { followRoutes } from '../telemetry/follow.js';
import type { JobFleetCounts, SessionDeviceBytes } from '../telemetry/prometheus.js';
import { startTlsListeners } from '../tls/listeners.js';
import type { HubMqtt } from './mqtt.js';
import type { HubStores } from './stores.js';
import type { HubTelemetry } from './telemetry.js';
import type { LiveTelemetry } from './telemetry-follow.js';

export interface HubPorts {
  mqtt: number;
  ws: number;
  http: number;
  /** Only when the hub has a certificate and key (tlsCertFile, tlsKeyFile). */
  mqtts?: number;
  wss?: number;
  https?: number;
}

export interface HubHttpDeps {
  api: HubApi;
  stores: HubStores;
  telemetry: HubTelemetry;
  /** What live views hear of committed telemetry: this hub's, or on a replica every replica's. */
  live: LiveTelemetry;
  mqtt: HubMqtt;
  authenticator: Authenticator;
  loginDelay: LoginDelay;
  desiredMayHaveChanged: () => void;
  /** Jobs' executions by state and jobs by phase, for Prometheus (broker/hub/jobs.ts). */
  jobCounts?: () => Promise<JobFleetCounts>;
  logger: Logger;
  /** Remote-access sessions: the WebSocket upgrades of both servers, and the counts Prometheus reads. */
  remote: { endpoint: SessionEndpoint; registry: SessionRegistry };
}

export async function startHubHttp(config: HubConfig, deps: HubHttpDeps, closer: Closer): Promise<HubPorts> {
  const { api, stores, telemetry, mqtt, logger } = deps;
  const { broker } = mqtt;
  const ports: HubPorts = { mqtt: broker.mqttPort, ws: broker.wsPort, http: 0 };
  // prom-client, its default process metrics and the exporter load on the first
  // scrape, not at start: a hub nobody scrapes does not carry them (BENCHMARKS.md,
  // "Footprint"). Every series is read at scrape time, so nothing is missed before.
  let registry: Promise<Registry> | undefined;
  const metrics = () =>
    (registry ??= import('../telemetry/prometheus.js').then(({ createPrometheusRegistry }) =>
      createPrometheusRegistry(
        {
          devices: () => stores.devices.presence(),
          appPhaseCounts: () => stores.devices.appPhases(),
          deviceReports: async () => deviceReportCounts(await stores.devices.fleetRows()),
          ...(deps.jobCounts ? { jobCounts: deps.jobCounts } : {}),
          latestMetrics: () => telemetry.ingest.latest.values(),
          ingest: () => ({
            lagSeconds: telemetry.ingest.counters.lagSeconds,
            stored: telemetry.ingest.counters.stored,
            dropped: telemetry.ingest.counters.invalid,
          }),
        },
        {
          received: () => mqtt.traffic.received(),
          sent: () => mqtt.traffic.sent(),
          connectedClients: () => broker.aedes.connectedClients,
          admission: () => mqtt.admission.counters(),
          dropped: () => mqtt.payloadLimits.dropped(),
          sessions: () => ({ open: deps.remote.registry.size, ...bytesOf(deps.remote.registry) }),
          linkBytes: () => mqtt.linkBytes.all(),
        },
      ),
    ));
  const fleet = new FleetFeed({
    devices: stores.devices,
    latest: telemetry.ingest.latest,
    history: telemetry.history,
    revoked: () => stores.credentials.revoked(),
    idClash: (id) => mqtt.clashes.get(id) !== undefined,
    logger,
  });
  closer.add('fleet feed', () => fleet.close());
  const routes = [
    fleetFollowRoute(fleet, deps.live.watchFleet),
    ...followRoutes(api, deps.live.records, (device) => mqtt.telemetryLink.follow(device)),
    metricsRoute(metrics),
    whoamiRoute(),
    hubKeyRoute(stores.signingKey.publicKeyPem),
    registerRoute({
      tokens: stores.tokens,
      credentials: stores.credentials,
      accounts: stores.accounts,
      devices: stores.devices,
      hubKey: () => stores.signingKey.publicKeyPem,
      mqttPorts: () => ({
        port: ports.mqtt,
        ...(ports.mqtts !== undefined ? { tlsPort: ports.mqtts } : {}),
        ...(config.agentMqttUrl !== undefined ? { url: config.agentMqttUrl } : {}),
      }),
      loginDelay: deps.loginDelay,
      logger,
      desiredMayHaveChanged: deps.desiredMayHaveChanged,
    }),
    ...installRoutes({
      script: installScriptPath(packageRoot()),
      releasesDir: releasesDirOf(config),
      version: flotillaVersion(),
    }),
    ...consoleRoutes({ keyRequired: !config.allowAnonymous }),
    ...dashboardRoutes({
      wsPort: ports.ws,
      topicRoot: config.topicRoot,
      get wssPort() {
        return ports.wss;
      },
    }),
  ];
  const handler = createHttpHandler(api, logger, routes, httpAuth(deps.authenticator, deps.loginDelay, logger));
  const http = createHttpServer(handler);
  http.on('upgrade', deps.remote.endpoint.upgrade);
  ports.http = await listen(http, config.httpPort, config.host, 'the HTTP API (--http-port)');
  closer.add('HTTP API', () => closeServer(http));
  const tls = await startTlsListeners(config, {
    handleMqtt: broker.handle,
    httpHandler: handler,
    httpUpgrade: deps.remote.endpoint.upgrade,
    logger,
  });
  if (tls) {
    closer.add('TLS listeners', () => tls.close());
    Object.assign(ports, tls.ports);
  }
  return ports;
}

/** Where the hub's release tarballs are: `--releases-dir`, else dist/bundles of its package when there is one. */
export function releasesDirOf(config: Pick<HubConfig, 'releasesDir'>): string | undefined {
  return config.releasesDir ?? defaultReleasesDir(packageRoot());
}

function bytesOf(registry: SessionRegistry): { bytesUp: number; bytesDown: number; devices: SessionDeviceBytes[] } {
  const devices = [...registry.deviceBytes()].map(([device, bytes]) => ({ device, bytesUp: bytes.up, bytesDown: bytes.down }));
  return { bytesUp: registry.bytes.up, bytesDown: registry.bytes.down, devices };
}
