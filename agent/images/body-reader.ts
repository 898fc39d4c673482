/**
 * Reads an HTTP response body chunk by chunk, with backpressure, without
 * losing the bytes that arrived before the connection broke.
 *
 * Why not the stream's async iterator: when a connection closes before the
 * declared length, Node's HTTP client destroys the response with an error,
 * and the iterator throws at once, dropping whatever the response still
 * buffered (tens of KiB per break, measured). Those bytes crossed the link;
 * a resume would fetch them again. Here every chunk is taken off the
 * response as it is emitted, and when the socket ends the response's buffer
 * is drained before Node destroys it; the break is reported only after every
 * chunk that arrived has been handed out.
 *
 * Invariants: at most `limit` bytes (plus one chunk) wait here, beyond that
 * the response is paused and TCP holds the sender back; next() resolves
 * each received byte exactly once, in order, then `undefined` at a clean end
 * or throws the break.
 */
import type { Readable } from 'node:stream';

const DEFAULT_LIMIT = 256 * 1024;

export class BodyReader {
  private readonly chunks: Buffer[] = [];
  private queued = 0;
  private ended = false;
  private failure: { error: unknown } | undefined;
  private wake: (() => void) | undefined;

  constructor(
    private readonly body: Readable,
    private readonly limit = DEFAULT_LIMIT,
  ) {
    body.on('data', (chunk: Buffer) => {
      this.chunks.push(chunk);
      this.queued += chunk.length;
      if (this.queued >= this.limit) body.pause();
      this.notify();
    });
    body.once('end', () => {
      this.ended = true;
      this.notify();
    });
    body.once('error', (error: unknown) => {
      this.failure ??= { error };
      this.notify();
    });
    body.once('close', () => {
      if (!this.ended) this.failure ??= { error: new Error('the connection closed before the whole body arrived') };
      this.notify();
    });
    // The socket's end comes before Node destroys a response cut short: take what it buffered.
    const socket = (body as Readable & { socket?: Readable | null }).socket;
    socket?.once('end', () => {
      while (body.read() !== null) {
        // read() emits each chunk as 'data', collected above
      }
    });
  }

  /** The next chunk; undefined at the end of the body; throws the break once every earlier chunk was handed out. */
  async next(): Promise<Buffer | undefined> {
    for (;;) {
      const chunk = this.chunks.shift();
      if (chunk) {
        this.queued -= chunk.length;
        if (this.queued < this.limit / 2 && this.body.isPaused()) this.body.resume();
        return chunk;
      }
      if (this.failure) throw this.failure.error;
      if (this.ended) return undefined;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
    }
  }

  /** Stops reading and frees the connection. */
  destroy(): void {
    this.body.destroy();
    this.chunks.length = 0;
    this.queued = 0;
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}
