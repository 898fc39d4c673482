/**
 * The opener's side of a forward session (docs/remote-protocol.md §2, forward): each
 * local connection is a channel N ≥ 1 numbered here. OPEN N asks the device
 * to connect to the session's target; nothing is sent on N before OPENED N;
 * then DATA, EOF (half-close) and CLOSE (reset) flow both ways, each
 * direction within the other side's credit.
 *
 * Invariants:
 * - a local source (socket, stdin) is paused until its channel is opened and
 *   whenever its credit runs out, so at most one window (+ one read) of it is
 *   in flight;
 * - bytes from the device are granted back only once written to the local
 *   end (write callback): a local reader that never reads stops the sender;
 * - a channel ends once (both sides' EOF, or a CLOSE from either side), and
 *   then its endpoint is destroyed and its credit forgotten.
 */
import type { Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { ReceiveWindow, SendCredit } from '../../shared/remote/flow.js';
import { FRAME, type Frame } from '../../shared/remote/frames.js';
import { OutboundChannel } from '../../shared/remote/outbound-channel.js';
import type { RemoteSession } from './session-client.js';
import { SessionError } from './session-errors.js';

/** One local end of a forwarded connection. */
export interface ChannelEndpoint {
  /** Bytes to the device. */
  readable: Readable;
  /** Bytes from the device. */
  writable: Writable;
  /** The device's side ended (EOF): end ours for writing (a TCP half-close). */
  endWrite(): void;
  destroy(): void;
  /** Calls `listener` when the local end closed by itself (a socket's 'close'), with its error if any. */
  onClose(listener: (error?: Error) => void): void;
}

export function socketEndpoint(socket: Socket): ChannelEndpoint {
  return {
    readable: socket,
    writable: socket,
    endWrite: () => socket.end(),
    destroy: () => socket.destroy(),
    onClose(listener) {
      let error: Error | undefined;
      socket.on('error', (err) => {
        error = err;
      });
      socket.once('close', () => listener(error));
    },
  };
}

/** How a channel ended: `refused` when the device never opened it. */
export interface ChannelEnd {
  channel: number;
  refused: boolean;
  reason?: string;
}

interface ChannelState {
  endpoint: ChannelEndpoint;
  opened: boolean;
  localEnded: boolean;
  remoteEnded: boolean;
  done: boolean;
  detach: () => void;
}

export class ForwardChannels {
  private next = 1;
  private readonly channels = new Map<number, ChannelState>();
  private readonly credit: SendCredit;
  private readonly inbound: ReceiveWindow;

  constructor(
    private readonly session: RemoteSession,
    private readonly onEnd: (end: ChannelEnd) => void = () => undefined,
  ) {
    this.credit = new SendCredit(session.window);
    this.inbound = new ReceiveWindow((channel, bytes) => session.send({ type: FRAME.window, channel, bytes }), session.window);
    session.start((frame) => this.handle(frame));
  }

  get open(): number {
    return this.channels.size;
  }

  /** Asks the device for a connection for `endpoint`; its source stays paused until the device opened it. */
  add(endpoint: ChannelEndpoint): number {
    const channel = this.next++;
    endpoint.readable.pause();
    const state: ChannelState = { endpoint, opened: false, localEnded: false, remoteEnded: false, done: false, detach: () => undefined };
    this.channels.set(channel, state);
    endpoint.onClose((error) => this.finish(channel, { sendClose: true, reason: error?.message ?? 'closed' }));
    this.session.send({ type: FRAME.open, channel });
    return channel;
  }

  /** Ends every channel's local end (the session is over). */
  destroyAll(): void {
    for (const [channel, state] of this.channels) {
      state.done = true;
      state.detach();
      state.endpoint.destroy();
      this.channels.delete(channel);
    }
  }

  private handle(frame: Frame): void {
    const state = this.channels.get(frame.channel);
    if (!state) return; // a late frame for a channel already closed here
    switch (frame.type) {
      case FRAME.opened:
        if (!state.opened) this.start(frame.channel, state);
        return;
      case FRAME.data: {
        if (!state.opened) return;
        if (!this.inbound.received(frame.channel, frame.data.length)) {
          this.session.fail(new SessionError(undefined, `the device sent past its flow-control window on connection ${frame.channel}`));
          return;
        }
        const bytes = frame.data.length;
        const channel = frame.channel;
        state.endpoint.writable.write(frame.data, () => this.inbound.consumed(channel, bytes));
        return;
      }
      case FRAME.window:
        this.credit.grant(frame.channel, frame.bytes);
        return;
      case FRAME.eof:
        state.remoteEnded = true;
        state.endpoint.endWrite();
        if (state.localEnded) this.finish(frame.channel, { sendClose: false, reason: 'closed', graceful: true });
        return;
      case FRAME.close:
        this.finish(frame.channel, { sendClose: false, reason: frame.reason });
        return;
      default:
        return;
    }
  }

  private start(channel: number, state: ChannelState): void {
    state.opened = true;
    this.credit.open(channel);
    this.inbound.open(channel);
    const output = new OutboundChannel({
      source: state.endpoint.readable,
      channel,
      credit: this.credit,
      sendData: (ch, data) => this.session.send({ type: FRAME.data, channel: ch, data }),
      onEnd: () => {
        state.localEnded = true;
        this.session.send({ type: FRAME.eof, channel });
        if (state.remoteEnded) this.finish(channel, { sendClose: false, reason: 'closed', graceful: true });
      },
    });
    state.detach = () => output.stop();
    // Paused since add(): a 'data' listener alone does not restart an explicitly paused stream.
    state.endpoint.readable.resume();
  }

  /**
   * `graceful`: both sides sent EOF, so both ends close by themselves once
   * what they were given is written; no CLOSE, which would make the device
   * destroy its socket, is sent.
   */
  private finish(channel: number, how: { sendClose: boolean; reason: string; graceful?: boolean }): void {
    const state = this.channels.get(channel);
    if (!state || state.done) return;
    state.done = true;
    this.channels.delete(channel);
    state.detach();
    if (how.sendClose && !this.session.isOver) this.session.send({ type: FRAME.close, channel, reason: how.reason });
    this.credit.close(channel);
    this.inbound.close(channel);
    if (!how.graceful) state.endpoint.destroy();
    this.onEnd({ channel, refused: !state.opened && !how.sendClose && !how.graceful, reason: how.reason });
  }
}
