/**
 * What the hub keeps of each session and refused attempt: the audit record
 * (audit-store.ts), an event on the device (`flotilla events`: types
 * `session-opened`, `session-ended`, `session-denied`) and a log line.
 *
 * Refused session topics are recorded at most once per client and topic per
 * TOPIC_REFUSAL_QUIET_MS: a client retrying a subscription in a loop leaves
 * one record a minute, not one per SUBSCRIBE.
 *
 * Recording never holds a session up and never fails it: the store's writes
 * run behind it, and one that fails is logged.
 */
import type { Logger } from 'pino';
import type { DeviceEvent, Topics } from '../../shared/index.js';
import type { Identity } from '../auth/identity.js';
import type { SessionTopicRefusal } from '../mqtt/access.js';
import type { AuditEnd, AuditStart, AuditStore } from './audit-store.js';

const TOPIC_REFUSAL_QUIET_MS = 60_000;
const MAX_REMEMBERED_REFUSALS = 10_000;

export interface SessionRecordDeps {
  audit: AuditStore;
  /** telemetry.ingest.hubEvent */
  hubEvent(deviceId: string, event: Pick<DeviceEvent, 'type' | 'message'>): void;
  /** Events go only to devices the hub knows (the events table is per device). */
  isKnownDevice(deviceId: string): Promise<boolean>;
  topics: Topics;
  logger: Logger;
  nowMs?: () => number;
}

/** The audit name of whoever opened a session or tried a topic. */
export function actorOf(identity: Identity | undefined, clientId?: string): string {
  if (identity === undefined) return clientId ? `unauthenticated client ${clientId}` : 'unauthenticated';
  switch (identity.kind) {
    case 'account':
      return identity.name;
    case 'device':
      return `device ${identity.deviceId}`;
    case 'anonymous':
      return clientId ? `anonymous client ${clientId}` : 'anonymous';
  }
}

export class SessionRecord {
  private readonly log: Logger;
  private readonly recentRefusals = new Map<string, number>();
  private readonly nowMs: () => number;

  constructor(private readonly deps: SessionRecordDeps) {
    this.log = deps.logger.child({ component: 'remote-access' });
    this.nowMs = deps.nowMs ?? Date.now;
  }

  /** Its audit record's id, once written (undefined if the write failed): what `ended` is given. */
  opened(start: AuditStart, sessionId: string): Promise<number | undefined> {
    const id = this.write(async () => {
      const auditId = await this.deps.audit.opened(start);
      this.log.info({ sessionId, auditId, ...start }, 'remote-access session opened');
      return auditId;
    });
    this.event(start.device, 'session-opened', `${start.what}: opened by ${start.actor}`);
    return id;
  }

  ended(opened: Promise<number | undefined>, start: AuditStart, sessionId: string, end: AuditEnd): void {
    void this.write(async () => {
      const auditId = await opened;
      if (auditId !== undefined) await this.deps.audit.ended(auditId, end);
      this.log.info({ sessionId, auditId, ...start, ...end }, 'remote-access session ended');
    });
    const how = end.outcome === 'exited' ? `exited with code ${end.exitCode}` : `${end.outcome}${end.reason ? ` (${end.reason})` : ''}`;
    this.event(
      start.device,
      'session-ended',
      `${start.what}: opened by ${start.actor}, ${how}; ${end.bytesUp} bytes from the device, ${end.bytesDown} to it`,
    );
  }

  denied(start: AuditStart, reason: string): void {
    void this.write(async () => {
      const auditId = await this.deps.audit.denied(start, reason);
      this.log.warn({ auditId, ...start, reason }, 'remote-access session refused');
    });
    this.event(start.device, 'session-denied', `${start.what}: refused to ${start.actor}: ${reason}`);
  }

  /** A session that never opened: the device was offline, did not answer, or could not start it. */
  failed(start: AuditStart, reason: string): void {
    void this.write(async () => {
      const auditId = await this.deps.audit.failed(start, reason);
      this.log.info({ auditId, ...start, reason }, 'remote-access session did not open');
    });
    this.event(start.device, 'session-ended', `${start.what}: opened by ${start.actor}, did not start: ${reason}`);
  }

  topicRefused(refusal: SessionTopicRefusal): void {
    const key = `${refusal.clientId}\0${refusal.action}\0${refusal.topic}`;
    const now = this.nowMs();
    const last = this.recentRefusals.get(key);
    if (last !== undefined && now - last < TOPIC_REFUSAL_QUIET_MS) return;
    if (this.recentRefusals.size >= MAX_REMEMBERED_REFUSALS) this.recentRefusals.clear();
    this.recentRefusals.set(key, now);
    const device = this.deps.topics.parseSessionFilter(refusal.topic)?.deviceId;
    const actor = actorOf(refusal.identity, refusal.clientId);
    const what = `${refusal.action} ${refusal.topic}`;
    void this.write(() => this.deps.audit.denied({ actor, device: device ?? '*', kind: 'topic', what }, refusal.reason));
    // On the device whose session it was, and on the device that tried (another device's topics).
    const trier = refusal.identity?.kind === 'device' ? refusal.identity.deviceId : undefined;
    for (const id of new Set([device, trier])) {
      if (id !== undefined) this.event(id, 'session-denied', `${actor} was refused: ${what}: ${refusal.reason}`);
    }
  }

  private event(deviceId: string, type: string, message: string): void {
    void this.write(async () => {
      if (await this.deps.isKnownDevice(deviceId)) this.deps.hubEvent(deviceId, { type, message });
    });
  }

  private async write<T>(step: () => Promise<T>): Promise<T | undefined> {
    try {
      return await step();
    } catch (err) {
      this.log.error({ err }, 'recording remote access failed');
      return undefined;
    }
  }
}
