/**
 * An in-process hub (real Aedes, dispatcher, HTTP API, SQLite file in a temp
 * dir) on loopback with OS-assigned ports, and its log lines captured.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { HubConfig } from '../../broker/config.js';
import { type Hub, type HubDeps, startHub } from '../../broker/hub.js';
import { LogCapture, type LogLevel } from './logs.js';

export interface TestHub {
  hub: Hub;
  dataDir: string;
  logs: LogCapture;
  mqttUrl: string;
  wsUrl: string;
  httpUrl: string;
  /** Stops the hub; removes its data dir unless the caller supplied it. */
  close(): Promise<void>;
}

export interface TestHubOptions {
  /** Reuse a data dir (a restart); the caller then owns and removes it. */
  dataDir?: string;
  /** A fixed MQTT port (to restart on the same port); 0 by default. */
  mqttPort?: number;
  logLevel?: LogLevel;
  /** More hub configuration (e.g. `readOnlyUsers`); the ports, host and data dir above win. */
  config?: Partial<Record<keyof HubConfig, unknown>>;
  /** Injected dependencies (the logger is always the capture's). */
  deps?: Omit<HubDeps, 'logger'>;
}

export async function startTestHub(options: TestHubOptions = {}): Promise<TestHub> {
  const ownsDir = options.dataDir === undefined;
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'flotilla-it-hub-'));
  const logs = new LogCapture(options.logLevel ?? 'warn');
  let hub: Hub;
  try {
    hub = await startHub(
      { ...options.config, dataDir, host: '127.0.0.1', mqttPort: options.mqttPort ?? 0, wsPort: 0, httpPort: 0, logLevel: 'silent' },
      { ...options.deps, logger: logs.logger },
    );
  } catch (err) {
    if (ownsDir) rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
  let closed = false;
  return {
    hub,
    dataDir,
    logs,
    mqttUrl: `mqtt://127.0.0.1:${hub.ports.mqtt}`,
    wsUrl: `ws://127.0.0.1:${hub.ports.ws}`,
    httpUrl: `http://127.0.0.1:${hub.ports.http}`,
    async close() {
      if (closed) return;
      closed = true;
      try {
        await hub.close();
      } finally {
        if (ownsDir) rmSync(dataDir, { recursive: true, force: true });
      }
    },
  };
}
