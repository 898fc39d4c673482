/**
 * Sends what a stream reads as DATA frames on one channel, within the credit
 * the other end granted (flow.ts): never a byte past it. When the credit is
 * spent the stream is paused, and what it already handed over (one chunk at
 * most) waits here until a WINDOW grant; so a reader that stops reading
 * stops the process, socket or terminal behind the stream. Both ends use it:
 * the agent for a process's output and a target's socket, the CLI for stdin
 * and a local connection.
 */
import type { Readable } from 'node:stream';
import type { SendCredit } from './flow.js';
import { MAX_DATA_BYTES } from './frames.js';

export interface OutboundChannelOptions {
  source: Readable;
  channel: number;
  credit: SendCredit;
  /** Sends one DATA frame (at most MAX_DATA_BYTES). */
  sendData: (channel: number, data: Buffer) => void;
  /** Once: the source ended and everything it read was sent. */
  onEnd: () => void;
}

export class OutboundChannel {
  private readonly pending: Buffer[] = [];
  private sourceEnded = false;
  private done = false;
  private stopped = false;

  private readonly onData = (chunk: Buffer | string): void => {
    this.pending.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
    this.flush();
  };

  constructor(private readonly options: OutboundChannelOptions) {
    const { source } = options;
    source.on('data', this.onData);
    source.once('end', () => this.sourceEnd());
    // An error or a destroy ends the output as it stands; the session decides what that means.
    source.once('close', () => this.sourceEnd());
    source.on('error', () => {});
  }

  /** Nothing more is sent, whatever the source does; a source that lives on (stdin) is left paused. */
  stop(): void {
    this.stopped = true;
    this.pending.length = 0;
    this.options.source.off('data', this.onData);
    this.options.source.pause();
  }

  private sourceEnd(): void {
    this.sourceEnded = true;
    this.flush();
  }

  private flush(): void {
    if (this.stopped) return;
    const { channel, credit, sendData, source } = this.options;
    while (this.pending.length > 0) {
      const available = credit.available(channel);
      if (available <= 0) {
        if (!source.isPaused()) source.pause();
        credit.onCredit(channel, () => this.flush());
        return;
      }
      const head = this.pending[0]!;
      const size = Math.min(available, MAX_DATA_BYTES, head.length);
      const piece = head.subarray(0, size);
      if (size === head.length) this.pending.shift();
      else this.pending[0] = head.subarray(size);
      credit.spend(channel, size);
      sendData(channel, piece);
      if (this.stopped) return;
    }
    if (this.sourceEnded) {
      if (!this.done) {
        this.done = true;
        this.options.onEnd();
      }
      return;
    }
    if (source.isPaused()) source.resume();
  }
}
