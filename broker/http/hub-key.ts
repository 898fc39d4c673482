/**
 * `GET /api/v1/hub/key` → `{hubKey}`: the hub's Ed25519 public key (SPKI PEM)
 * that signs desired state, for operators who pin it on a device by hand
 * (`flotilla agent --hub-key FILE`). Public by nature, so served without
 * authentication; registration hands the same key out with the device's secret.
 */
import type { RawRoute } from './server.js';

export function hubKeyRoute(publicKeyPem: string): RawRoute {
  const body = JSON.stringify({ hubKey: publicKeyPem });
  return {
    method: 'GET',
    pattern: /^\/api\/v1\/hub\/key$/,
    public: true,
    handle(_req, res) {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
    },
  };
}
