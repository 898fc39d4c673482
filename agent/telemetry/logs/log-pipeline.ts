/**
 * The pure part of the log pipeline, on an injected clock: every line a
 * container writes goes through `push` (rate limit per app → length cap →
 * the bounded buffer); the follower manager asks `dueIn` when to send and
 * `takeBatch` what to send. No I/O, no timers.
 */
import type { LogLine } from '../../../shared/index.js';
import type { LogEntry } from '../../runtime/runtime.js';
import { capLine } from './line-cap.js';
import { LogBuffer, ownerOf } from './log-buffer.js';
import type { LinePosition } from './log-cursor.js';
import { RateLimit } from './rate-limit.js';

export interface LogPipelineOptions {
  /** Lines per second per app (burst: twice that). */
  rateLinesPerSecond: number;
  /** All apps' unsent lines together. */
  bufferBytes: number;
  lineMaxBytes: number;
  /** A batch is due as soon as this many bytes wait… */
  batchBytes: number;
  /** …or once the oldest waiting line is this old. */
  batchMs: number;
  now: () => number;
}

/** Whose container a line is from: an app's, or with `job` a job's (its name in `app`). */
export interface LineOrigin {
  job?: true;
}

/** Where a line came from in the engine's log: the container id and the line's position there. */
export interface LineSource {
  id: string;
  position: LinePosition;
}

export class LogPipeline {
  private readonly limits = new Map<string, RateLimit>();
  private readonly buffer: LogBuffer;
  /** Kept beside the lines (never sent): what the ledger records for a taken batch. */
  private readonly sources = new WeakMap<LogLine, LineSource>();

  constructor(private readonly options: LogPipelineOptions) {
    this.buffer = new LogBuffer({ maxBytes: options.bufferBytes, now: options.now });
  }

  /** How old the oldest waiting line may grow before a batch is due. */
  get batchMs(): number {
    return this.options.batchMs;
  }

  set batchMs(ms: number) {
    this.options.batchMs = ms;
  }

  /** Lines dropped since the start (rate limit, buffer full, or link down long enough to fill it). */
  get droppedLines(): number {
    return this.buffer.droppedLines;
  }

  get bufferedBytes(): number {
    return this.buffer.bytes;
  }

  /**
   * Offers one line of `app`'s container; false when it was dropped (and
   * counted). With `job`, `app` is a job's name: its lines are marked so, and
   * it has a rate limit of its own, apart from an app of the same name.
   */
  push(app: string, container: string, entry: LogEntry, source?: LineSource, { job }: LineOrigin = {}): boolean {
    if (!this.limitOf(ownerOf({ app, ...(job ? { job } : {}) })).admit()) {
      this.buffer.drop(app, container, entry.ts, 'rate limit', 1, job);
      return false;
    }
    const capped = capLine(entry.line, this.options.lineMaxBytes);
    const line: LogLine = { app, container, stream: entry.stream, ts: entry.ts, line: capped.line, ...(job ? { job } : {}) };
    if (capped.truncated || entry.truncated) line.truncated = true;
    if (source) this.sources.set(line, source);
    return this.buffer.offer(line);
  }

  /** Offers a `system` line of the agent's own about a container's log (not rate-limited). */
  pushSystem(app: string, container: string, ts: string, text: string, { job }: LineOrigin = {}): boolean {
    return this.buffer.offer({ app, container, ...(job ? { job } : {}), stream: 'system', ts, line: text });
  }

  /** Milliseconds until a batch is due (0: now); undefined when nothing waits. */
  dueIn(): number | undefined {
    if (this.buffer.bytes >= this.options.batchBytes) return 0;
    const since = this.buffer.waitingSince;
    if (since === undefined) return undefined;
    return Math.max(0, since + this.options.batchMs - this.options.now());
  }

  /** The next batch's lines, oldest first, about `batchBytes` at most; empty when nothing waits. */
  takeBatch(): LogLine[] {
    return this.buffer.take(this.options.batchBytes);
  }

  /** The engine positions of a taken batch's container lines (markers have none). */
  sourcesOf(lines: readonly LogLine[]): LineSource[] {
    const out: LineSource[] = [];
    for (const line of lines) {
      const source = this.sources.get(line);
      if (source) out.push(source);
    }
    return out;
  }

  /** Forgets an app's (or job's) rate limit once none of its containers is followed (apps come and go over months). */
  forgetApp(app: string, { job }: LineOrigin = {}): void {
    this.limits.delete(ownerOf({ app, ...(job ? { job } : {}) }));
  }

  private limitOf(owner: string): RateLimit {
    let limit = this.limits.get(owner);
    if (!limit) {
      limit = new RateLimit(this.options.rateLinesPerSecond, this.options.now);
      this.limits.set(owner, limit);
    }
    return limit;
  }
}
