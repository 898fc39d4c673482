/**
 * What every remote session on the device shares: its frames in and out
 * (numbered and checked), its credit windows, its idle clock, and its one
 * ending.
 *
 * Invariants:
 * - a session ends once; after that it sends nothing, whatever its process
 *   or sockets still do;
 * - it ends with EXIT 0 (its command exited, after all output was sent),
 *   with CLOSE 0 and the reason (it failed, the opener broke the protocol,
 *   it went idle), or silently (the opener or the hub ended it, or the link
 *   to the hub is gone: nobody is left to tell);
 * - incoming DATA beyond the window granted, a frame out of sequence or one
 *   that does not decode ends it with CLOSE 0.
 */
import type { Logger } from 'pino';
import { durationText } from '../../shared/index.js';
import {
  asBuffer,
  CHANNEL,
  FRAME,
  type Frame,
  type FrameBody,
  FrameReceiver,
  FrameSender,
  ReceiveWindow,
  SendCredit,
  type SessionKind,
} from '../../shared/remote/index.js';
import { IdleClock } from './idle-clock.js';

export interface SessionContext {
  sessionId: string;
  kind: SessionKind;
  /** The flow-control window each side grants per channel at first. */
  window: number;
  idleTimeoutMs: number;
  /** Publishes one frame on the session's up topic. */
  publish: (frame: Buffer) => void;
  /** Called once, when the session has ended and released what it held. */
  onEnded: (ending: SessionEnding) => void;
  logger: Logger;
}

/** How a session ended, for the device's log and for what it tells the opener. */
export type SessionEnding =
  | { outcome: 'exited'; code: number }
  | { outcome: 'failed' | 'idle'; reason: string }
  /** The opener sent CLOSE 0, or the hub sent session.close, or the agent is stopping. */
  | { outcome: 'closed'; reason: string }
  | { outcome: 'link_lost' };

export abstract class Session {
  private readonly out: FrameSender;
  private readonly incoming = new FrameReceiver();
  protected readonly credit: SendCredit;
  protected readonly window: ReceiveWindow;
  private readonly idle: IdleClock;
  private endedWith: SessionEnding | undefined;
  protected readonly log: Logger;

  constructor(protected readonly context: SessionContext) {
    this.log = context.logger;
    this.out = new FrameSender((bytes) => context.publish(asBuffer(bytes)));
    this.credit = new SendCredit(context.window);
    this.window = new ReceiveWindow((channel, bytes) => this.send({ type: FRAME.window, channel, bytes }), context.window);
    this.idle = new IdleClock(context.idleTimeoutMs, () =>
      this.end({ outcome: 'idle', reason: `idle for ${durationText(context.idleTimeoutMs)}: no data either way` }),
    );
  }

  get ended(): boolean {
    return this.endedWith !== undefined;
  }

  /** Starts the session's work, once the opener has been told it is open. */
  abstract start(): void;

  /** One frame from the opener, as it arrived on the session's down topic. */
  receive(bytes: Buffer): void {
    if (this.ended) return;
    const decoded = this.incoming.receive(bytes);
    if (!decoded.ok) {
      this.end({ outcome: 'failed', reason: decoded.reason });
      return;
    }
    const frame = decoded.frame;
    switch (frame.type) {
      case FRAME.data:
        this.idle.touch();
        if (!this.window.received(frame.channel, frame.data.length)) {
          this.end({ outcome: 'failed', reason: `the opener sent past its window on channel ${frame.channel}` });
          return;
        }
        this.onData(frame.channel, asBuffer(frame.data));
        return;
      case FRAME.window:
        this.credit.grant(frame.channel, frame.bytes);
        return;
      case FRAME.close:
        if (frame.channel === CHANNEL.session) this.end({ outcome: 'closed', reason: frame.reason });
        else this.onFrame(frame);
        return;
      default:
        this.onFrame(frame);
    }
  }

  /** Ends the session (the first call wins): tells the opener when someone is there to hear it, then releases everything. */
  end(ending: SessionEnding): void {
    if (this.ended) return;
    this.endedWith = ending;
    this.idle.stop();
    if (ending.outcome === 'exited') this.out.send({ type: FRAME.exit, channel: CHANNEL.session, code: ending.code });
    else if (ending.outcome === 'failed' || ending.outcome === 'idle')
      this.out.send({ type: FRAME.close, channel: CHANNEL.session, reason: ending.reason });
    try {
      this.release(ending);
    } catch (err) {
      this.log.warn({ err }, 'releasing the session failed');
    }
    this.context.onEnded(ending);
  }

  /** Sends a frame unless the session has ended; DATA keeps it from going idle. */
  protected send(body: FrameBody): void {
    if (this.ended) return;
    if (body.type === FRAME.data) this.idle.touch();
    this.out.send(body);
  }

  protected sendData(channel: number, data: Buffer): void {
    this.send({ type: FRAME.data, channel, data });
  }

  /** Bytes from the opener on a data channel (already counted against its window). */
  protected abstract onData(channel: number, data: Buffer): void;
  /** Every other frame but WINDOW and CLOSE 0. */
  protected abstract onFrame(frame: Frame): void;
  /** Kills what the session runs and closes what it holds. */
  protected abstract release(ending: SessionEnding): void;
}
