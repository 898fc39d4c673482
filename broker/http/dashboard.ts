/**
 * `GET /dashboard/`: the example live dashboard (examples/dashboard/) and the
 * browser build of mqtt.js it loads, so the page works without internet.
 *
 *   GET /dashboard              redirect to /dashboard/
 *   GET /dashboard/             index.html
 *   GET /dashboard/dashboard.js the page's script
 *   GET /dashboard/mqtt.min.js  node_modules/mqtt/dist/mqtt.min.js
 *   GET /dashboard/config.json  {wsPort, wssPort?, topicRoot}: where the page's MQTT-over-WebSocket client connects
 *
 * Only these names are served (no path from the URL reaches the file system).
 * The page holds no credentials: the operator types them, or puts them in the URL;
 * so the files are public even where the API requires a key.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { packageRoot } from '../../shared/version.js';
import type { RawRoute } from './server.js';
import { sendUncached } from './uncached.js';

export interface DashboardConfig {
  /** The port of the broker's WebSocket listener, as the hub bound it. */
  wsPort: number;
  /** The secure WebSocket listener's port, when the hub has TLS: a page served over https must use it (no mixed content). */
  wssPort?: number;
  topicRoot: string;
}

/**
 * The page's folder: examples/dashboard under the package root, which is
 * where a checkout, tsc's output and the installed release all keep it.
 */
export function dashboardDir(): string | undefined {
  const root = packageRoot();
  const dir = root && join(root, 'examples/dashboard');
  return dir && existsSync(join(dir, 'index.html')) ? dir : undefined;
}

const require = createRequire(import.meta.url);

export function dashboardRoutes(config: DashboardConfig, dir: string | undefined = dashboardDir()): RawRoute[] {
  const files: Record<string, { path: () => string | undefined; type: string }> = {
    '': { path: () => dir && join(dir, 'index.html'), type: 'text/html; charset=utf-8' },
    'index.html': { path: () => dir && join(dir, 'index.html'), type: 'text/html; charset=utf-8' },
    'dashboard.js': { path: () => dir && join(dir, 'dashboard.js'), type: 'text/javascript; charset=utf-8' },
    'mqtt.min.js': { path: () => require.resolve('mqtt/dist/mqtt.min'), type: 'text/javascript; charset=utf-8' },
  };
  return [
    {
      method: 'GET',
      pattern: /^\/dashboard$/,
      public: true,
      handle(_req, res) {
        res.writeHead(308, { location: '/dashboard/' }).end();
      },
    },
    {
      method: 'GET',
      pattern: /^\/dashboard\/config\.json$/,
      public: true,
      handle(_req, res) {
        sendUncached(res, 200, 'application/json', `${JSON.stringify(config)}\n`);
      },
    },
    {
      method: 'GET',
      pattern: /^\/dashboard\/([a-z.]*)$/,
      public: true,
      async handle(_req, res, match) {
        const file = Object.hasOwn(files, match[1]!) ? files[match[1]!] : undefined;
        const path = file?.path();
        if (!file || !path) return sendUncached(res, 404, 'text/plain; charset=utf-8', 'not found\n');
        sendUncached(res, 200, file.type, await readFile(path));
      },
    },
  ];
}
