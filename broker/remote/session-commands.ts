/**
 * The hub's side of docs/remote-protocol.md §1: `session.open` and `session.close`
 * commands on the device's `commands` topic (QoS 1, through the in-process
 * bus), and the open's reply from `replies`.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { type Command, formatIssues, type Topics, validate } from '../../shared/index.js';
import { SESSION_COMMANDS, type SessionCloseArgs, type SessionOpenArgs, SessionOpened } from '../../shared/remote/requests.js';
import type { SessionFailureCode } from '../../shared/remote/websocket.js';
import type { HubBus } from '../mqtt/hub-bus.js';
import type { CommandReplies } from './command-replies.js';

/** How long a device has to act on a command before it ignores it as stale. */
const COMMAND_TTL_MS = 30_000;
/** How long the hub waits for the device's answer to an open (docs/remote-protocol.md §5: `timeout`). */
export const OPEN_TIMEOUT_MS = 10_000;

export type OpenOutcome = { ok: true; opened: SessionOpened } | { ok: false; code: SessionFailureCode; message: string; cancelled?: true };

/** The device's error codes (SESSION_ERROR_CODES) as the hub reports them to the opener. */
const FAILURE_OF: Record<string, SessionFailureCode> = {
  not_found: 'not_found',
  forbidden: 'forbidden',
  busy: 'busy',
  invalid: 'invalid_request',
  failed: 'failed',
};

export class SessionCommands {
  private readonly log: Logger;

  constructor(
    private readonly deps: {
      bus: HubBus;
      topics: Topics;
      replies: CommandReplies;
      logger: Logger;
      openTimeoutMs?: number;
      nowMs?: () => number;
    },
  ) {
    this.log = deps.logger.child({ component: 'remote-access' });
  }

  /** Asks the device to open; `onWaiting` gets a cancel for the wait (the opener left). */
  async open(deviceId: string, args: SessionOpenArgs, onWaiting?: (cancel: () => void) => void): Promise<OpenOutcome> {
    const command = this.command(SESSION_COMMANDS.open, args);
    const timeoutMs = this.deps.openTimeoutMs ?? OPEN_TIMEOUT_MS;
    let cancelled = false;
    const reply = this.deps.replies.wait(deviceId, command.id, timeoutMs);
    onWaiting?.(() => {
      cancelled = true;
      this.deps.replies.cancel(command.id);
    });
    try {
      await this.publish(deviceId, command);
    } catch (err) {
      this.deps.replies.cancel(command.id);
      return { ok: false, code: 'failed', message: `sending the open to the device failed: ${(err as Error).message}` };
    }
    const answer = await reply;
    if (cancelled) return { ok: false, code: 'failed', message: 'the opener left', cancelled: true };
    if (answer === undefined) {
      return { ok: false, code: 'timeout', message: `the device did not answer within ${Math.round(timeoutMs / 1000)} s` };
    }
    if (!answer.ok) {
      const code = FAILURE_OF[answer.error?.code ?? ''] ?? 'failed';
      return { ok: false, code, message: answer.error?.message ?? 'the device refused the session' };
    }
    const opened = validate(SessionOpened, answer.result);
    if (!opened.ok || opened.value.sessionId !== args.sessionId) {
      const reason = opened.ok ? 'for another session' : formatIssues(opened.issues);
      return { ok: false, code: 'failed', message: `the device's answer is not a valid open (${reason})` };
    }
    return { ok: true, opened: opened.value };
  }

  /** Tells the device to end the session; nothing waits for an answer (it sends nothing more on it). */
  close(deviceId: string, args: SessionCloseArgs): void {
    this.publish(deviceId, this.command(SESSION_COMMANDS.close, args)).catch((err: Error) => {
      this.log.warn({ deviceId, sessionId: args.sessionId, err: err.message }, 'sending session.close failed');
    });
  }

  private command(type: string, args: SessionOpenArgs | SessionCloseArgs): Command {
    const now = this.deps.nowMs?.() ?? Date.now();
    return { id: randomUUID(), type, args: { ...args }, expiresAt: new Date(now + COMMAND_TTL_MS).toISOString() };
  }

  private publish(deviceId: string, command: Command): Promise<void> {
    return this.deps.bus.publish(this.deps.topics.device(deviceId, 'commands'), JSON.stringify(command), { qos: 1 });
  }
}
