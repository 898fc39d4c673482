/**
 * A simulated fleet: `count` real agents (the real link, local store,
 * reconciler and planner) in this process, each over its own MemoryRuntime,
 * all connected to one hub. Only the container engine is simulated.
 *
 * Every device gets its own data dir (the agent's SQLite file) under one temp
 * dir that `close()` removes.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { type Agent, startAgent } from '../../../agent/agent.js';
import type { AgentConfig } from '../../../agent/config.js';
import { type ImageBehaviour, MemoryRuntime } from './memory-runtime.js';

export interface FleetOptions {
  /** The hub's MQTT URL, e.g. `mqtt://127.0.0.1:1883`. */
  hubUrl: string;
  count: number;
  /** Device ids are `{idPrefix}-{i}`, i zero-padded (default "sim"). Must itself be a valid device id. */
  idPrefix?: string;
  /** Labels device `i` (0-based) reports. */
  labels?: (i: number) => Record<string, string>;
  /** Failure injection per image, shared by every device (see MemoryRuntimeOptions.behaviour). */
  behaviour?: (image: string) => ImageBehaviour | undefined;
  /** Default simulated pull duration (ms). */
  pullDelayMs?: number;
  /** Where per-device data dirs go; a fresh temp dir by default. Removed by close() either way. */
  dataRoot?: string;
  /** Full re-observation period of each agent (default 2000 ms). */
  resyncIntervalMs?: number;
  /** Any other agent settings (e.g. stateIntervalMs), applied to every device. */
  agent?: Partial<Record<keyof AgentConfig, unknown>>;
  /** A logger for the agents (default: silent). */
  logger?: Logger;
  /** How many agents start at once (default 50): a connect storm of thousands is a test of its own. */
  startConcurrency?: number;
}

export interface SimDevice {
  id: string;
  agent: Agent;
  runtime: MemoryRuntime;
}

export interface Fleet {
  ids: string[];
  agents: Agent[];
  runtimes: MemoryRuntime[];
  devices: SimDevice[];
  /** The device with this id (throws for an unknown one). */
  device(id: string): SimDevice;
  /** Closes every agent and runtime and removes the data dirs. Idempotent. */
  close(): Promise<void>;
}

export async function startFleet(options: FleetOptions): Promise<Fleet> {
  const prefix = options.idPrefix ?? 'sim';
  const width = String(Math.max(0, options.count - 1)).length;
  const root = options.dataRoot ?? mkdtempSync(join(tmpdir(), 'flotilla-fleet-'));
  const devices: SimDevice[] = [];
  let closed = false;

  const close = async () => {
    if (closed) return;
    closed = true;
    await Promise.allSettled(devices.map((d) => d.agent.close()));
    for (const d of devices) d.runtime.close();
    rmSync(root, { recursive: true, force: true });
  };

  const startOne = async (i: number): Promise<SimDevice> => {
    const id = `${prefix}-${String(i).padStart(width, '0')}`;
    const dataDir = join(root, id);
    mkdirSync(dataDir, { recursive: true });
    const runtime = new MemoryRuntime({
      deviceId: id,
      ...(options.behaviour ? { behaviour: options.behaviour } : {}),
      ...(options.pullDelayMs !== undefined ? { pullDelayMs: options.pullDelayMs } : {}),
    });
    try {
      const agent = await startAgent(
        {
          logLevel: 'silent',
          resyncIntervalMs: options.resyncIntervalMs ?? 2000,
          ...options.agent,
          deviceId: id,
          hubUrl: options.hubUrl,
          dataDir,
          labels: options.labels?.(i) ?? {},
        },
        { runtime, ...(options.logger ? { logger: options.logger } : {}) },
      );
      return { id, agent, runtime };
    } catch (err) {
      runtime.close();
      throw err;
    }
  };

  try {
    const concurrency = Math.max(1, options.startConcurrency ?? 50);
    for (let first = 0; first < options.count; first += concurrency) {
      const batch = Array.from({ length: Math.min(concurrency, options.count - first) }, (_, k) => first + k);
      const started = await Promise.allSettled(batch.map(startOne));
      for (const result of started) if (result.status === 'fulfilled') devices.push(result.value);
      const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
    }
  } catch (err) {
    await close();
    throw err;
  }

  const byId = new Map(devices.map((d) => [d.id, d]));
  return {
    ids: devices.map((d) => d.id),
    agents: devices.map((d) => d.agent),
    runtimes: devices.map((d) => d.runtime),
    devices,
    device(id) {
      const found = byId.get(id);
      if (!found) throw new Error(`no simulated device ${id}`);
      return found;
    },
    close,
  };
}
