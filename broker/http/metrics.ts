/**
 * `GET /metrics`: the Prometheus text exposition of the hub's registry
 * (broker/telemetry/prometheus.ts). Every value is read at scrape time.
 */
import type { Registry } from 'prom-client';
import type { RawRoute } from './server.js';

export function metricsRoute(registry: Registry): RawRoute {
  return {
    method: 'GET',
    pattern: /^\/metrics$/,
    // Prometheus scrapes with a viewer's key (bearer_token) where the hub requires credentials.
    role: 'viewer',
    async handle(_req, res) {
      const text = await registry.metrics();
      res.writeHead(200, { 'content-type': registry.contentType, 'content-length': Buffer.byteLength(text) }).end(text);
    },
  };
}
