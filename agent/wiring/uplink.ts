/**
 * The MQTT link to the hub and the device's events, which go out through it.
 * Opened before the parts that report through it (the reconciler, the
 * desired-state intake, telemetry), so they hold it from the start; the one
 * thing it hands the other way, a desired document, goes out on a signal.
 */
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Closer } from '../../shared/closer.js';
import type { Command, DesiredState, DeviceEvent, TelemetryLinkArgs, Topics } from '../../shared/index.js';
import { Signal } from '../../shared/signal.js';
import type { AgentConfig } from '../config.js';
import { Link } from '../link.js';
import type { LocalStore } from '../local-store.js';
import { IN_MEMORY } from '../outbox/outbox-file.js';
import { chooseEncoding, readTelemetryLinkCommand } from '../telemetry/link-tuning.js';

/**
 * An event as its source knows it: the uplink numbers it, and stamps it with
 * the time it is sent unless the source says when it happened (`ts`: a job
 * container that ended while no agent ran ended long before its event goes).
 */
export type NewEvent = Omit<DeviceEvent, 'seq' | 'ts'> & { ts?: string };

export interface Uplink {
  link: Link;
  /** Queues an event in the link's outbox, numbered from the store's persisted seq. */
  event(event: NewEvent): void;
  /** Log batches (payloads as queued) the outbox acknowledged, wrote to its file or dropped: the log ledger listens. */
  logsSettled: Signal<Buffer[]>;
  /** What the link hands remote access (wiring/remote.ts listens). */
  remote: RemoteArrivals;
  /** The hub's `telemetry.link` commands (the link takes their encodings; wiring/telemetry.ts their live log window). */
  telemetryTuned: Signal<TelemetryLinkArgs>;
  /** The hub acknowledged a state report (wiring/agent-upgrade.ts: a release on trial confirms). */
  stateAcknowledged: Signal<void>;
}

export interface RemoteArrivals {
  commands: Signal<Command>;
  frames: Signal<{ sessionId: string; frame: Buffer }>;
  connectionLost: Signal<void>;
}

export interface UplinkDeps {
  store: LocalStore;
  topics: Topics;
  /** Every desired document the link receives on this device's topic, another device's included (the intake refuses those). */
  desiredArrived: Signal<DesiredState>;
  logger: Logger;
}

export function openUplink(config: AgentConfig, { store, topics, desiredArrived, logger }: UplinkDeps, closer: Closer): Uplink {
  const logsSettled = new Signal<Buffer[]>((err) => logger.error({ component: 'logs', err }, 'recording settled log batches failed'));
  const remoteFailed = (err: unknown) => logger.error({ component: 'remote', err }, 'handling a remote-access message failed');
  const remote: RemoteArrivals = {
    commands: new Signal(remoteFailed),
    frames: new Signal(remoteFailed),
    connectionLost: new Signal(remoteFailed),
  };
  const telemetryTuned = new Signal<TelemetryLinkArgs>((err) =>
    logger.error({ component: 'logs', err }, "applying the hub's telemetry settings failed"),
  );
  const stateAcknowledged = new Signal<void>((err) =>
    logger.error({ component: 'agent-upgrade', err }, 'handling a state acknowledgement failed'),
  );
  // The hub's telemetry settings arrive on the commands topic beside remote access's commands, which never see them.
  const onCommand = (command: Command) => {
    const verdict = readTelemetryLinkCommand(command, Date.now());
    if (verdict.kind === 'other') return remote.commands.emit(command);
    if (verdict.kind === 'invalid')
      logger.warn({ component: 'link', commandId: command.id, reason: verdict.reason }, 'invalid telemetry.link command dropped');
    if (verdict.kind !== 'tune') return;
    // A command about the live window alone says nothing of encodings.
    if (verdict.args.encodings !== undefined) link.acceptEncodings(chooseEncoding(verdict.args.encodings));
    telemetryTuned.emit(verdict.args);
  };
  const link = new Link({
    hubUrl: config.hubUrl,
    deviceId: config.deviceId,
    topics,
    logger,
    onDesired: (desired) => desiredArrived.emit(desired),
    onForeignDesired: (desired) => desiredArrived.emit(desired),
    onCommand,
    encoding: config.telemetryEncoding,
    onSessionFrame: (sessionId, frame) => remote.frames.emit({ sessionId, frame }),
    onConnectionLost: () => remote.connectionLost.emit(),
    onStateAcknowledged: () => stateAcknowledged.emit(),
    stateIntervalMs: config.stateIntervalMs,
    keepaliveSeconds: config.keepaliveSeconds,
    uplinkBytesPerSecond: config.uplinkBytesPerSecond,
    outbox: {
      path: outboxPath(config),
      maxBytes: config.outboxMaxBytes,
      ttlMs: config.outboxTtlMs,
      onSettled: (cls, payloads) => {
        if (cls === 'logs') logsSettled.emit(payloads);
      },
    },
    // Only ever called after the constructor (the outbox reports drops on push and on its timer), so `link` is set.
    onOutboxDrops: (summary) => event({ type: 'outbox-dropped', message: summary }),
    ...(config.secret !== undefined ? { secret: config.secret } : {}),
    tls: {
      ...(config.ca !== undefined ? { ca: config.ca } : {}),
      ...(config.tlsCert !== undefined ? { cert: config.tlsCert } : {}),
      ...(config.tlsKey !== undefined ? { key: config.tlsKey } : {}),
    },
  });
  closer.add('link', () => link.close());
  function event({ ts, ...event }: NewEvent): void {
    link.publishEvent({ seq: store.nextEventSeq(), ts: ts ?? new Date().toISOString(), ...event });
  }
  return { link, event, logsSettled, remote, telemetryTuned, stateAcknowledged };
}

/** `memory` keeps the outbox in RAM; the default is a file beside the agent's own. */
function outboxPath(config: AgentConfig): string {
  if (config.outboxPath === 'memory') return IN_MEMORY;
  return config.outboxPath ?? join(config.dataDir, 'outbox.db');
}
