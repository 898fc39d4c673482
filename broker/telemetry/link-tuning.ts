/**
 * The hub's half of how devices send telemetry on their links: the
 * `telemetry.link` command (shared/schemas/telemetry.ts) on a device's
 * `commands` topic.
 *
 * - Encodings: sent whenever an agent (a client whose will is on its own
 *   status topic) subscribes to its commands (on every connection, once the
 *   subscription exists, so the command cannot race it), listing what this
 *   hub decodes (shared/telemetry-encoding.ts). An
 *   agent compresses only after hearing it on the connection, so an older
 *   hub, which never says it, keeps getting plain JSON; an older agent
 *   ignores the command.
 * - A live log window: while anyone follows a device's logs (`flotilla logs
 *   -f`, the console) the device batches its lines over LIVE_LOG_BATCH_MS
 *   instead of its own window of seconds. The hub leases it for
 *   LIVE_LEASE_MS and renews it at half that while followers remain; the
 *   last follower leaving ends it at once. A hub that dies mid-follow costs
 *   the device at most one lease of short batches.
 *
 * Commands go only to a connected agent (a queued copy would be stale when
 * it arrived) and expire after COMMAND_TTL_MS.
 */
import { randomUUID } from 'node:crypto';
import type { Aedes, Client, Subscription } from 'aedes';
import type { Logger } from 'pino';
import { type Command, isDeviceId, TELEMETRY_LINK_COMMAND, type TelemetryLinkArgs, type Topics } from '../../shared/index.js';
import { TELEMETRY_ENCODINGS } from '../../shared/telemetry-encoding.js';
import type { HubBus } from '../mqtt/hub-bus.js';
import { isAgentClient } from '../mqtt/protocol-gate.js';

/** The batch window a followed device uses: what a person reading along perceives as live. */
export const LIVE_LOG_BATCH_MS = 250;
/** How long one live-window command holds on the device. */
export const LIVE_LEASE_MS = 60_000;
/** A command not yet received by then is dropped by the agent. */
const COMMAND_TTL_MS = 30_000;

export interface TelemetryLinkTuningOptions {
  bus: Pick<HubBus, 'publish'>;
  topics: Topics;
  logger: Logger;
  /** Whether a device has a connection now (commands for an absent one would only wait in its session). */
  isConnected: (deviceId: string) => boolean;
  /** The encodings offered (default: every one this hub decodes); tests play an older hub with []. */
  encodings?: readonly string[];
  now?: () => number;
  /** The live window's batch and lease (defaults LIVE_LOG_BATCH_MS, LIVE_LEASE_MS). */
  liveLogBatchMs?: number;
  liveLeaseMs?: number;
}

interface Followed {
  followers: number;
  renew: NodeJS.Timeout;
}

export class TelemetryLinkTuning {
  private readonly followed = new Map<string, Followed>();
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly encodings: string[];
  private readonly liveLogBatchMs: number;
  private readonly liveLeaseMs: number;

  constructor(private readonly options: TelemetryLinkTuningOptions) {
    this.log = options.logger.child({ component: 'telemetry-link' });
    this.now = options.now ?? Date.now;
    this.encodings = [...(options.encodings ?? TELEMETRY_ENCODINGS)];
    this.liveLogBatchMs = options.liveLogBatchMs ?? LIVE_LOG_BATCH_MS;
    this.liveLeaseMs = options.liveLeaseMs ?? LIVE_LEASE_MS;
  }

  /** Tells every agent, when it subscribes to its commands, what this hub decodes (and of a follow already running). */
  attach(aedes: Aedes): void {
    aedes.on('subscribe', (subscriptions: Subscription[], client: Client) => {
      const id = client?.id;
      if (!id || !isAgentClient(client, this.options.topics)) return;
      const own = this.options.topics.device(id, 'commands');
      if (subscriptions.some((s) => s.topic === own)) this.send(id, this.argsFor(id));
    });
  }

  /**
   * Someone started following `deviceId`'s logs; the returned function says
   * they stopped. The first follower starts the live window, the last one
   * leaving ends it.
   */
  follow(deviceId: string): () => void {
    const entry = this.followed.get(deviceId);
    if (entry) entry.followers++;
    else {
      const renew = setInterval(() => this.send(deviceId, this.liveArgs()), this.liveLeaseMs / 2);
      renew.unref();
      this.followed.set(deviceId, { followers: 1, renew });
      this.send(deviceId, this.liveArgs());
    }
    let stopped = false;
    return () => {
      if (stopped) return;
      stopped = true;
      const current = this.followed.get(deviceId);
      if (!current || --current.followers > 0) return;
      clearInterval(current.renew);
      this.followed.delete(deviceId);
      this.send(deviceId, { liveForMs: 0 });
    };
  }

  /** Devices someone follows now. */
  get following(): number {
    return this.followed.size;
  }

  close(): void {
    for (const { renew } of this.followed.values()) clearInterval(renew);
    this.followed.clear();
  }

  private argsFor(deviceId: string): TelemetryLinkArgs {
    return { encodings: this.encodings, ...(this.followed.has(deviceId) ? this.liveArgs() : {}) };
  }

  private liveArgs(): TelemetryLinkArgs {
    return { liveLogBatchMs: this.liveLogBatchMs, liveForMs: this.liveLeaseMs };
  }

  private send(deviceId: string, args: TelemetryLinkArgs): void {
    if (!isDeviceId(deviceId) || !this.options.isConnected(deviceId)) return;
    const command: Command = {
      id: randomUUID(),
      type: TELEMETRY_LINK_COMMAND,
      args: { ...args },
      expiresAt: new Date(this.now() + COMMAND_TTL_MS).toISOString(),
    };
    this.options.bus.publish(this.options.topics.device(deviceId, 'commands'), JSON.stringify(command), { qos: 1 }).catch((err: Error) => {
      this.log.debug({ deviceId, err: err.message }, 'sending telemetry settings failed');
    });
  }
}
