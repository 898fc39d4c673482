/**
 * The device's remote sessions (exec, host shell, port-forward): opened and
 * closed by the hub's `session.open` / `session.close` commands, fed the
 * frames of their `down` topics, ended all at once when the link drops.
 *
 * Invariants:
 * - at most `maxSessions` sessions, those still opening included; one more
 *   is answered `busy`;
 * - an open is answered once, on `replies`, after what the session runs has
 *   started and before the session sends its first frame, so the opener
 *   knows the session before its data;
 * - when the link drops every session ends at once (processes killed,
 *   sockets closed) and a session still opening is abandoned when its start
 *   completes: nothing runs on for an opener who is gone;
 * - a bad command or frame is logged and dropped; nothing here throws into the link.
 */
import type { Logger } from 'pino';
import type { Command, CommandReply } from '../../shared/index.js';
import { describeRequest, type SessionOpenArgs, type SessionOpened } from '../../shared/remote/index.js';
import type { Session, SessionEnding } from './session.js';
import { readSessionCommand } from './session-commands.js';
import { type OpenDeps, prepareSession, SessionOpenError } from './session-open.js';

/** What the sessions need of the MQTT link. */
export interface SessionLink {
  /** A command's reply, QoS 1, now or never. */
  publishReply(reply: CommandReply): void;
  /** One frame on the session's up topic, QoS 0. */
  publishSessionFrame(sessionId: string, frame: Buffer): void;
}

export interface SessionManagerOptions extends OpenDeps {
  link: SessionLink;
  maxSessions: number;
  idleTimeoutMs: number;
  logger: Logger;
  now?: () => number;
}

/** A session slot: opening (its start not done yet), or open. */
type Slot = { state: 'opening'; cancelled: boolean } | { state: 'open'; session: Session };

export class SessionManager {
  private readonly slots = new Map<string, Slot>();
  private readonly log: Logger;
  private readonly now: () => number;

  constructor(private readonly options: SessionManagerOptions) {
    this.log = options.logger.child({ component: 'remote' });
    this.now = options.now ?? Date.now;
  }

  /** Sessions open or opening. */
  get count(): number {
    return this.slots.size;
  }

  onCommand(command: Command): void {
    const verdict = readSessionCommand(command, this.now());
    switch (verdict.kind) {
      case 'other':
        this.log.debug({ commandId: command.id, type: command.type }, 'command this agent does not handle; dropped');
        return;
      case 'expired':
        this.log.info({ commandId: command.id, type: command.type, expiresAt: command.expiresAt }, 'expired command ignored');
        return;
      case 'invalid':
        this.log.warn({ commandId: command.id, type: command.type, reason: verdict.reason }, 'invalid session command refused');
        this.reply({ commandId: command.id, ok: false, error: { code: 'invalid', message: verdict.reason } });
        return;
      case 'open':
        void this.open(command.id, verdict.args);
        return;
      case 'close':
        this.closeSession(verdict.args.sessionId, verdict.args.reason);
        return;
    }
  }

  onFrame(sessionId: string, frame: Buffer): void {
    const slot = this.slots.get(sessionId);
    if (slot?.state !== 'open') {
      this.log.debug({ sessionId }, 'frame for no open session; dropped');
      return;
    }
    slot.session.receive(frame);
  }

  /** The link to the hub dropped: no opener can reach any session any more. */
  linkLost(): void {
    this.endAll({ outcome: 'link_lost' });
  }

  /** The agent is stopping: every session ends and its opener is told. */
  close(): void {
    this.endAll({ outcome: 'failed', reason: 'the agent is stopping' });
  }

  private endAll(ending: SessionEnding): void {
    for (const slot of [...this.slots.values()]) {
      if (slot.state === 'opening') slot.cancelled = true;
      else slot.session.end(ending);
    }
  }

  private closeSession(sessionId: string, reason: string): void {
    const slot = this.slots.get(sessionId);
    if (!slot) return;
    if (slot.state === 'opening') slot.cancelled = true;
    else slot.session.end({ outcome: 'closed', reason });
  }

  private async open(commandId: string, args: SessionOpenArgs): Promise<void> {
    const { sessionId, request, openedBy } = args;
    const fields = { sessionId, kind: request.kind, openedBy };
    const refuse = (code: SessionOpenError['code'], message: string) => {
      this.log.info({ ...fields, code, reason: message }, 'session refused');
      this.reply({ commandId, ok: false, error: { code, message } });
    };
    if (this.slots.has(sessionId)) return refuse('invalid', `session ${sessionId} is already open`);
    if (this.slots.size >= this.options.maxSessions) {
      return refuse(
        'busy',
        `the device is busy: it runs its most sessions at once (${this.options.maxSessions}, agent flag --max-sessions)`,
      );
    }
    const slot: Slot = { state: 'opening', cancelled: false };
    this.slots.set(sessionId, slot);
    let prepared: Awaited<ReturnType<typeof prepareSession>>;
    try {
      prepared = await prepareSession(request, this.options);
    } catch (err) {
      this.slots.delete(sessionId);
      if (slot.cancelled) return;
      if (err instanceof SessionOpenError) return refuse(err.code, err.message);
      this.log.error({ ...fields, err }, 'opening a session failed');
      return refuse('failed', (err as Error).message);
    }
    if (slot.cancelled) {
      this.slots.delete(sessionId);
      prepared.abandon();
      this.log.info(fields, 'session abandoned while it opened (closed, or the link dropped)');
      return;
    }
    const log = this.log.child(fields);
    const openedAt = this.now();
    const session = prepared.create({
      sessionId,
      kind: request.kind,
      window: args.window,
      idleTimeoutMs: this.options.idleTimeoutMs,
      logger: log,
      publish: (frame) => this.options.link.publishSessionFrame(sessionId, frame),
      onEnded: (ending) => {
        if (this.slots.get(sessionId) === open) this.slots.delete(sessionId);
        log.info({ ...describeEnding(ending), durationMs: this.now() - openedAt }, 'session ended');
      },
    });
    const open: Slot = { state: 'open', session };
    this.slots.set(sessionId, open);
    const result: SessionOpened = { sessionId, ...(prepared.container !== undefined ? { container: prepared.container } : {}) };
    this.reply({ commandId, ok: true, result });
    log.info(
      { what: describeRequest(request), ...(prepared.container !== undefined ? { container: prepared.container } : {}) },
      'session opened',
    );
    session.start();
  }

  private reply(reply: CommandReply): void {
    try {
      this.options.link.publishReply(reply);
    } catch (err) {
      this.log.warn({ commandId: reply.commandId, err }, 'publishing a reply failed');
    }
  }
}

function describeEnding(ending: SessionEnding): Record<string, unknown> {
  switch (ending.outcome) {
    case 'exited':
      return { outcome: ending.outcome, exitCode: ending.code };
    case 'link_lost':
      return { outcome: ending.outcome };
    default:
      return { outcome: ending.outcome, reason: ending.reason };
  }
}
