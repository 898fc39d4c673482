/**
 * One session's relay between the opener's WebSocket and the device's
 * session topics, once the hub has asked the device to open it (docs/remote-protocol.md
 * §2 and §5):
 *
 * - client → hub binary messages are published on the session's `down`
 *   topic unchanged (QoS 0, the hub's in-process bus); up frames are sent to
 *   the client unchanged. Nothing is buffered here beyond ws's send buffer:
 *   the endpoints' credit windows bound what is in flight. Only the header is
 *   read, to count DATA payload bytes and to see the device's EXIT 0 / CLOSE 0.
 * - Up frames that arrive before the device's open reply has been handled
 *   are held (at most a window's worth) and sent right after `opened`.
 * - The session ends exactly once (`end`), whichever comes first: the
 *   device's EXIT 0 or CLOSE 0 (socket closed 1000), the device's connection
 *   dropping (`link_lost`, 4504), the client leaving or missing two pongs
 *   (the device is sent `session.close`), the hub stopping (the same, and the
 *   client is told).
 */
import type { Logger } from 'pino';
import type { WebSocket } from 'ws';
import type { Topics } from '../../shared/index.js';
import { CHANNEL, decodeFrame, FRAME, FRAME_HEADER_BYTES, MAX_DATA_BYTES, peekFrame } from '../../shared/remote/frames.js';
import { SESSION_FAILURES, type SessionFailed, type SessionFailureCode, type SessionReady } from '../../shared/remote/websocket.js';
import type { HubBus } from '../mqtt/hub-bus.js';
import type { AuditEnd, AuditStart } from './audit-store.js';
import type { SessionCommands } from './session-commands.js';
import type { SessionRecord } from './session-record.js';
import type { SessionLink, SessionRegistry } from './session-registry.js';

export interface RelayDeps {
  bus: HubBus;
  topics: Topics;
  registry: SessionRegistry;
  commands: SessionCommands;
  record: SessionRecord;
  logger: Logger;
}

type Phase = 'opening' | 'open' | 'ended';

/** Sends one SessionFailed text message, then closes with its code (docs/remote-protocol.md §5). */
export function failSocket(ws: WebSocket, code: SessionFailureCode, message: string): void {
  if (ws.readyState !== ws.OPEN) return;
  const failed: SessionFailed = { type: 'error', error: { code, message } };
  ws.send(JSON.stringify(failed));
  ws.close(SESSION_FAILURES[code], message.slice(0, 120));
}

export class SessionRelay implements SessionLink {
  private phase: Phase = 'opening';
  private held: Buffer[] = [];
  private audited: Promise<number | undefined> | undefined;
  private bytesUp = 0;
  private bytesDown = 0;
  /** The client sent CLOSE 0 itself: the session's end is the opener's doing. */
  private clientClosed = false;
  private readonly down: string;
  /** Called when the device's link drops or the hub stops while the open is still being awaited. */
  onAbortOpen: ((code: SessionFailureCode, reason: string) => void) | undefined;

  constructor(
    private readonly ws: WebSocket,
    readonly sessionId: string,
    readonly deviceId: string,
    private readonly start: AuditStart,
    private readonly deps: RelayDeps,
  ) {
    this.down = deps.topics.session(deviceId, sessionId, 'down');
  }

  /** The device opened it: tell the client, send what the device already sent, then relay. */
  opened(ready: SessionReady): void {
    if (this.phase !== 'opening') return;
    this.phase = 'open';
    this.audited = this.deps.record.opened(this.start, this.sessionId);
    this.ws.send(JSON.stringify(ready));
    this.ws.on('message', (data, isBinary) => this.fromClient(data as Buffer, isBinary));
    const held = this.held;
    this.held = [];
    for (const frame of held) this.up(frame);
  }

  up(frame: Buffer): void {
    if (this.phase === 'opening') {
      this.held.push(frame);
      return;
    }
    if (this.phase === 'ended') return;
    const header = peekFrame(frame);
    if (header?.dataBytes) {
      this.bytesUp += header.dataBytes;
      this.deps.registry.countBytes(this.deviceId, 'up', header.dataBytes);
    }
    this.ws.send(frame, { binary: true });
    if (header && (header.type === FRAME.exit || header.type === FRAME.close) && header.channel === CHANNEL.session) {
      this.deviceEnded(frame);
    }
  }

  linkLost(): void {
    const reason = "the device's connection to the hub dropped";
    if (this.phase === 'opening') {
      this.onAbortOpen?.('link_lost', reason);
      return;
    }
    if (!this.end({ outcome: 'link_lost', reason })) return;
    failSocket(this.ws, 'link_lost', reason);
  }

  shutdown(): void {
    const reason = 'the hub is shutting down';
    if (this.phase === 'opening') {
      this.onAbortOpen?.('failed', reason);
      return;
    }
    if (!this.end({ outcome: 'closed', reason })) return;
    this.deps.commands.close(this.deviceId, { sessionId: this.sessionId, reason });
    failSocket(this.ws, 'failed', reason);
  }

  /** The client's socket closed (it left, or missed two pongs). */
  clientGone(reason: string): void {
    if (this.phase !== 'open') return;
    if (!this.end({ outcome: 'closed', reason })) return;
    this.deps.commands.close(this.deviceId, { sessionId: this.sessionId, reason });
  }

  private fromClient(data: Buffer, isBinary: boolean): void {
    if (this.phase !== 'open') return;
    const header = isBinary ? peekFrame(data) : undefined;
    if (!header) {
      this.deps.logger.debug({ sessionId: this.sessionId, bytes: data.length, isBinary }, 'client message that is not a frame dropped');
      return;
    }
    if (data.length > FRAME_HEADER_BYTES + MAX_DATA_BYTES) {
      // The device would refuse it anyway (frames.ts) and end the session; said here, with the reason, instead.
      const reason = `a frame of ${data.length} bytes from the opener (at most ${FRAME_HEADER_BYTES + MAX_DATA_BYTES})`;
      if (!this.end({ outcome: 'failed', reason })) return;
      this.deps.commands.close(this.deviceId, { sessionId: this.sessionId, reason });
      failSocket(this.ws, 'failed', reason);
      return;
    }
    if (header.dataBytes) {
      this.bytesDown += header.dataBytes;
      this.deps.registry.countBytes(this.deviceId, 'down', header.dataBytes);
    } else if (header.type === FRAME.close && header.channel === CHANNEL.session) {
      this.clientClosed = true;
    }
    this.deps.bus.publish(this.down, data, { qos: 0 }).catch((err: Error) => {
      this.deps.logger.warn({ sessionId: this.sessionId, err: err.message }, 'relaying a frame to the device failed');
    });
  }

  private deviceEnded(frame: Buffer): void {
    const decoded = decodeFrame(frame);
    let ending: Omit<AuditEnd, 'bytesUp' | 'bytesDown'>;
    if (decoded.ok && decoded.frame.type === FRAME.exit) ending = { outcome: 'exited', exitCode: decoded.frame.code };
    else if (decoded.ok && decoded.frame.type === FRAME.close) {
      const { reason } = decoded.frame;
      ending = { outcome: this.clientClosed ? 'closed' : reason.startsWith('idle') ? 'idle' : 'failed', reason };
    } else ending = { outcome: 'failed', reason: decoded.ok ? 'closed' : decoded.reason };
    if (!this.end(ending)) return;
    this.ws.close(1000);
  }

  /** Records the end once; false if it had already ended. */
  private end(ending: Omit<AuditEnd, 'bytesUp' | 'bytesDown'>): boolean {
    if (this.phase === 'ended') return false;
    const wasOpen = this.phase === 'open';
    this.phase = 'ended';
    this.deps.registry.remove(this.sessionId);
    if (wasOpen && this.audited !== undefined) {
      this.deps.record.ended(this.audited, this.start, this.sessionId, { ...ending, bytesUp: this.bytesUp, bytesDown: this.bytesDown });
    }
    return true;
  }

  /** The open did not happen (refused, timed out, aborted): out of the registry, nothing to record here. */
  abandon(): void {
    if (this.phase !== 'opening') return;
    this.phase = 'ended';
    this.held = [];
    this.deps.registry.remove(this.sessionId);
  }
}
