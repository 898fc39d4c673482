/**
 * An in-process hub (real Aedes, dispatcher, HTTP API, SQLite file in a
 * scratch dir) on loopback with OS-assigned ports, and its log lines captured.
 */
import type { HubConfig } from '../../broker/config.js';
import { type Hub, type HubDeps, startHub } from '../../broker/hub.js';
import { LogCapture, type LogLevel } from './logs.js';
import { scratchDir } from './scratch.js';

export interface TestHub {
  hub: Hub;
  dataDir: string;
  logs: LogCapture;
  mqttUrl: string;
  wsUrl: string;
  httpUrl: string;
  /** Stops the hub; its data dir stays until the scratch dir's test (or file) is over, so another hub can open it. */
  close(): Promise<void>;
  /**
   * Stops this hub (if it still runs) and starts a new one on the same data
   * dir and MQTT port, with the same options but `changes`: what a device
   * sees as its hub restarting. The new hub has new WebSocket and HTTP ports
   * and its own log capture; this one stays closed.
   */
  restart(changes?: RestartOptions): Promise<TestHub>;
}

export interface TestHubOptions {
  /** Open this data dir (e.g. one a test prepared); a new scratch dir by default. */
  dataDir?: string;
  /** A fixed MQTT port (a hub that comes up where devices already look for it); 0 by default. */
  mqttPort?: number;
  logLevel?: LogLevel;
  /** More hub configuration (e.g. `readOnlyUsers`); the ports, host and data dir above win. */
  config?: Partial<Record<keyof HubConfig, unknown>>;
  /** Injected dependencies (the logger is always the capture's). */
  deps?: Omit<HubDeps, 'logger'>;
}

export interface RestartOptions extends Omit<TestHubOptions, 'dataDir' | 'mqttPort'> {
  /** Start on a new, empty data dir instead: a hub that lost its data, or another hub, on the same address. */
  freshDataDir?: boolean;
}

export async function startTestHub(options: TestHubOptions = {}): Promise<TestHub> {
  const dataDir = options.dataDir ?? scratchDir('flotilla-it-hub-');
  const logs = new LogCapture(options.logLevel ?? 'warn');
  const hub = await startHub(
    { ...options.config, dataDir, host: '127.0.0.1', mqttPort: options.mqttPort ?? 0, wsPort: 0, httpPort: 0, logLevel: 'silent' },
    { ...options.deps, logger: logs.logger },
  );
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await hub.close();
  };
  return {
    hub,
    dataDir,
    logs,
    mqttUrl: `mqtt://127.0.0.1:${hub.ports.mqtt}`,
    wsUrl: `ws://127.0.0.1:${hub.ports.ws}`,
    httpUrl: `http://127.0.0.1:${hub.ports.http}`,
    close,
    async restart({ freshDataDir = false, ...changes } = {}) {
      await close();
      return startTestHub({
        ...options,
        ...changes,
        dataDir: freshDataDir ? scratchDir('flotilla-it-hub-') : dataDir,
        mqttPort: hub.ports.mqtt,
      });
    },
  };
}
