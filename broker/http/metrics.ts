/**
 * `GET /metrics`: the Prometheus text exposition of the hub's registry
 * (broker/telemetry/prometheus.ts). Every value is read at scrape time.
 */
import type { Registry } from 'prom-client';
import type { RawRoute } from './server.js';

/** `registry` is made on the first scrape (broker/hub/http.ts). */
export function metricsRoute(registry: () => Promise<Registry>): RawRoute {
  return {
    method: 'GET',
    pattern: /^\/metrics$/,
    // Prometheus scrapes with a viewer's key (bearer_token) where the hub requires credentials.
    role: 'viewer',
    async handle(_req, res) {
      const exporter = await registry();
      const text = await exporter.metrics();
      res.writeHead(200, { 'content-type': exporter.contentType, 'content-length': Buffer.byteLength(text) }).end(text);
    },
  };
}
