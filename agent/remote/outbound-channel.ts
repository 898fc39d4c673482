/**
 * Sends what a stream reads as DATA frames on one channel, within the credit
 * the opener granted (shared/remote/flow.ts): never a byte past it. When the
 * credit is spent the stream is paused, and what it already handed over
 * (one chunk at most) waits here until a WINDOW grant; so a reader that
 * stops reading stops the process or socket behind the stream.
 */
import type { Readable } from 'node:stream';
import { MAX_DATA_BYTES, type SendCredit } from '../../shared/remote/index.js';

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

  constructor(private readonly options: OutboundChannelOptions) {
    const { source } = options;
    source.on('data', (chunk: Buffer | string) => {
      this.pending.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
      this.flush();
    });
    source.once('end', () => this.sourceEnd());
    // An error or a destroy ends the output as it stands; the session decides what that means.
    source.once('close', () => this.sourceEnd());
    source.on('error', () => {});
  }

  /** Nothing more is sent, whatever the source does. */
  stop(): void {
    this.stopped = true;
    this.pending.length = 0;
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
