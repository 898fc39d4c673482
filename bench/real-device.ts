/**
 * The setup the apply benchmarks share: a hub and a real agent in this
 * process, the agent driving the real Docker Engine, the test images in the
 * loopback registry; plus the probes they time answers with.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { type Logger, pino } from 'pino';
import { type Agent, startAgent } from '../agent/agent.js';
import { type Hub, startHub } from '../broker/hub.js';
import { ensureTestImages } from '../test/e2e/support/images.js';

export const run = promisify(execFile);
export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;

/** The app's answer on a published port, or undefined while nothing answers within `timeoutMs`. */
export async function get(port: number, timeoutMs = 500): Promise<string | undefined> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(timeoutMs) });
    return (await res.text()).trim();
  } catch {
    return undefined;
  }
}

export async function until(what: string, probe: () => Promise<boolean>, timeoutMs = 120_000, everyMs = 5): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

export interface RealDevice {
  deviceId: string;
  hub: Hub;
  agent: Agent;
  /** The hub's HTTP API root, `http://127.0.0.1:PORT/api/v1`. */
  api: string;
  images: { v1: string; v2: string };
  /** `POST /api/v1/apps`; throws unless the hub accepted it. */
  apply(spec: object): Promise<void>;
  /** The app's phase and revision as the device last reported them. */
  phase(app: string): Promise<{ name: string; phase: string; revision: number } | undefined>;
  /** Stops both and removes the containers and data they left. */
  close(): Promise<void>;
}

/** Hub and agent logs go to `logger` (silent unless given), both at its level. */
export async function startRealDevice(options: { deviceId?: string; logger?: Logger } = {}): Promise<RealDevice> {
  const deviceId = options.deviceId ?? 'bench-device';
  const logger = options.logger ?? pino({ level: 'silent' });
  const images = await ensureTestImages();
  const dataDir = mkdtempSync(join(tmpdir(), 'flotilla-bench-'));
  const hub = await startHub(
    { dataDir: join(dataDir, 'hub'), mqttPort: 0, wsPort: 0, httpPort: 0, logLevel: logger.level as 'silent' },
    { logger },
  );
  const agent = await startAgent(
    {
      deviceId,
      hubUrl: `mqtt://127.0.0.1:${hub.ports.mqtt}`,
      dataDir: join(dataDir, 'agent'),
      logLevel: logger.level as 'silent',
      resyncIntervalMs: 1000,
      containerNamePrefix: 'bench.',
    },
    { logger },
  );
  const api = `http://127.0.0.1:${hub.ports.http}/api/v1`;
  await until('the device', async () => (await fetch(`${api}/devices/${deviceId}`)).ok);
  return {
    deviceId,
    hub,
    agent,
    api,
    images,
    async apply(spec) {
      const res = await fetch(`${api}/apps`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(spec),
      });
      if (!res.ok) throw new Error(`apply failed: ${await res.text()}`);
    },
    async phase(app) {
      const device = (await (await fetch(`${api}/devices/${deviceId}`)).json()) as {
        apps: { name: string; phase: string; revision: number }[];
      };
      return device.apps.find((a) => a.name === app);
    },
    async close() {
      await agent.close();
      await hub.close();
      await run('sh', ['-c', `docker rm -f $(docker ps -aq --filter label=flotilla.device=${deviceId}) 2>/dev/null || true`]);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
