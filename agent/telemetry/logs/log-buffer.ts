/**
 * The agent's one buffer of unsent log lines, for all apps together, bounded
 * in bytes.
 *
 * Invariants:
 * - `bytes` (the sum of `lineCost` over queued lines) stays within `maxBytes`,
 *   apart from `suppressed N lines` markers, of which at most one per
 *   container is ever added beyond it (at `take`).
 * - No app is starved by another (a job counts as an app of its own, apart
 *   from an app of the same name): when the buffer is full, an app holding
 *   less than its fair share (maxBytes / apps with queued lines) gets room
 *   by evicting the newest lines of the app holding the most; an app at or
 *   over its share has its new line dropped. A flooding app may use the
 *   whole buffer while nobody else needs it, never against them.
 * - Every line dropped (here, or counted in with `drop` by the rate limit) is
 *   counted once in `droppedLines`, and shows up as a `system` line
 *   `suppressed N lines (reason)` with `suppressed: N`, in order: right before
 *   the container's next accepted line, or at the next `take`, whichever
 *   comes first. Nothing is dropped silently.
 * - `take` returns lines oldest first (in order of acceptance, across apps).
 */
import type { LogLine } from '../../../shared/index.js';

export type DropReason = 'rate limit' | 'buffer full';

/**
 * What a queued line is charged, at least its JSON size in a batch unless the
 * text needs escaping: the text and the names, plus an allowance for the
 * keys, quotes and flags (79 bytes with `truncated`) and the object itself.
 */
export const LINE_OVERHEAD_BYTES = 96;

export function lineCost(line: LogLine): number {
  return Buffer.byteLength(line.line) + line.app.length + line.container.length + line.ts.length + LINE_OVERHEAD_BYTES;
}

interface Item {
  line: LogLine;
  cost: number;
  /** Acceptance order across apps. */
  order: number;
  /** Clock time it was queued. */
  at: number;
  /** On a marker: why its lines were dropped (to merge it back if it is itself evicted). */
  reasons?: DropReason[];
}

/** Dropped lines of one container not yet reported by a marker. */
interface Pending {
  app: string;
  container: string;
  /** A job's container: its marker is a job's line too. */
  job?: true;
  count: number;
  /** The engine's timestamp of the latest dropped line: where the marker belongs. */
  ts: string;
  reasons: Set<DropReason>;
  /** Clock time of the first drop, so the marker goes out within one batch interval. */
  since: number;
}

/** A FIFO that can also give back its newest item; a head index keeps `shift` O(1). */
class Queue<T> {
  private items: T[] = [];
  private head = 0;

  get size(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
  }

  peek(): T | undefined {
    return this.items[this.head];
  }

  last(): T | undefined {
    return this.size > 0 ? this.items[this.items.length - 1] : undefined;
  }

  shift(): T | undefined {
    const item = this.items[this.head];
    if (item === undefined) return undefined;
    this.items[this.head] = undefined as T;
    this.head++;
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }

  pop(): T | undefined {
    if (this.size === 0) return undefined;
    return this.items.pop();
  }
}

interface AppQueue {
  queue: Queue<Item>;
  bytes: number;
}

export interface LogBufferOptions {
  maxBytes: number;
  now: () => number;
}

export class LogBuffer {
  private readonly apps = new Map<string, AppQueue>();
  private readonly pending = new Map<string, Pending>();
  private total = 0;
  private order = 0;
  private dropped = 0;

  constructor(private readonly options: LogBufferOptions) {}

  /** Bytes of queued lines. */
  get bytes(): number {
    return this.total;
  }

  /** Lines dropped since the start, for every reason. */
  get droppedLines(): number {
    return this.dropped;
  }

  /** Whether there is anything to send: queued lines or drops to report. */
  get empty(): boolean {
    return this.apps.size === 0 && this.pending.size === 0;
  }

  /** Bytes one app (or `job:NAME`, see ownerOf) holds (for tests and diagnostics). */
  bytesOf(owner: string): number {
    return this.apps.get(owner)?.bytes ?? 0;
  }

  /**
   * Clock time since which something has been waiting to be sent (the oldest
   * queued line, or the first unreported drop); undefined when empty.
   */
  get waitingSince(): number | undefined {
    let oldest: number | undefined;
    for (const { queue } of this.apps.values()) {
      const head = queue.peek();
      if (head && (oldest === undefined || head.at < oldest)) oldest = head.at;
    }
    for (const p of this.pending.values()) if (oldest === undefined || p.since < oldest) oldest = p.since;
    return oldest;
  }

  /** Queues a line, or drops and counts it when the buffer is full (see the fairness invariant). */
  offer(line: LogLine): boolean {
    const key = keyOf(line.app, line.container, line.job);
    const pending = this.pending.get(key);
    const marker = pending ? markerLine(pending) : undefined;
    const cost = lineCost(line) + (marker ? lineCost(marker) : 0);
    if (!this.makeRoom(ownerOf(line), cost)) {
      this.countDrop(line.app, line.container, line.ts, 'buffer full', 1, line.job);
      return false;
    }
    if (pending && marker) {
      this.pending.delete(key);
      this.enqueue(marker, [...pending.reasons]);
    }
    this.enqueue(line);
    return true;
  }

  /** Counts `count` lines of a container (a job's with `job`) dropped before they reached the buffer (e.g. by the rate limit). */
  drop(app: string, container: string, ts: string, reason: DropReason, count = 1, job?: true): void {
    this.countDrop(app, container, ts, reason, count, job);
  }

  /**
   * Takes the oldest lines, up to `maxBytes` of `lineCost` (at least one line
   * when any is queued). Unreported drops become markers first, so a batch
   * taken after a flood ends says what was lost.
   */
  take(maxBytes: number): LogLine[] {
    for (const p of this.pending.values()) this.enqueue(markerLine(p), [...p.reasons]);
    this.pending.clear();
    const out: LogLine[] = [];
    let size = 0;
    for (;;) {
      let from: AppQueue | undefined;
      let head: Item | undefined;
      for (const q of this.apps.values()) {
        const h = q.queue.peek();
        if (h && (!head || h.order < head.order)) {
          from = q;
          head = h;
        }
      }
      if (!from || !head) break;
      if (out.length > 0 && size + head.cost > maxBytes) break;
      from.queue.shift();
      from.bytes -= head.cost;
      this.total -= head.cost;
      if (from.queue.size === 0) this.apps.delete(ownerOf(head.line));
      out.push(head.line);
      size += head.cost;
    }
    return out;
  }

  /** `owner`: the app (or job) queue the line goes to (ownerOf). */
  private makeRoom(owner: string, cost: number): boolean {
    const max = this.options.maxBytes;
    if (this.total + cost <= max) return true;
    if (cost > max) return false;
    const apps = this.apps.size + (this.apps.has(owner) ? 0 : 1);
    const share = max / apps;
    if (this.bytesOf(owner) + cost > share) return false;
    // Under its share while the buffer is full, so some other app is over
    // its share: take the room from whoever holds the most.
    while (this.total + cost > max) {
      let victim: string | undefined;
      let most = 0;
      for (const [name, q] of this.apps) {
        if (q.bytes > most) {
          victim = name;
          most = q.bytes;
        }
      }
      if (victim === undefined || victim === owner) return false;
      this.evictNewest(victim);
    }
    return true;
  }

  private evictNewest(owner: string): void {
    const q = this.apps.get(owner);
    const item = q?.queue.pop();
    if (!q || !item) return;
    q.bytes -= item.cost;
    this.total -= item.cost;
    if (q.queue.size === 0) this.apps.delete(owner);
    const { line } = item;
    if (line.stream === 'system' && line.suppressed !== undefined) {
      // An evicted marker's lines were counted when dropped: hand them back to be reported again.
      this.addPending(line.app, line.container, line.ts, item.reasons ?? [], line.suppressed, line.job);
    } else {
      this.countDrop(line.app, line.container, line.ts, 'buffer full', 1, line.job);
    }
  }

  private countDrop(app: string, container: string, ts: string, reason: DropReason, count: number, job: true | undefined): void {
    this.dropped += count;
    this.addPending(app, container, ts, [reason], count, job);
  }

  private addPending(app: string, container: string, ts: string, reasons: DropReason[], count: number, job: true | undefined): void {
    const key = keyOf(app, container, job);
    const p = this.pending.get(key);
    if (p) {
      p.count += count;
      if (ts > p.ts) p.ts = ts;
      for (const r of reasons) p.reasons.add(r);
    } else {
      this.pending.set(key, { app, container, ...(job ? { job } : {}), count, ts, reasons: new Set(reasons), since: this.options.now() });
    }
  }

  private enqueue(line: LogLine, reasons?: DropReason[]): void {
    const owner = ownerOf(line);
    let q = this.apps.get(owner);
    if (!q) {
      q = { queue: new Queue(), bytes: 0 };
      this.apps.set(owner, q);
    }
    const last = q.queue.last();
    // Two markers of one container with nothing between them are one marker.
    if (reasons && last && last.line.stream === 'system' && last.line.container === line.container && last.reasons) {
      const merged = [...new Set([...last.reasons, ...reasons])];
      const count = (last.line.suppressed ?? 0) + (line.suppressed ?? 0);
      const mergedLine = markerLine({
        app: line.app,
        container: line.container,
        ...(line.job ? { job: line.job } : {}),
        count,
        ts: line.ts,
        reasons: new Set(merged),
      });
      const cost = lineCost(mergedLine);
      q.bytes += cost - last.cost;
      this.total += cost - last.cost;
      last.line = mergedLine;
      last.cost = cost;
      last.reasons = merged;
      return;
    }
    const cost = lineCost(line);
    q.queue.push({ line, cost, order: this.order++, at: this.options.now(), ...(reasons ? { reasons } : {}) });
    q.bytes += cost;
    this.total += cost;
  }
}

/** The queue a line goes to: its app's, or its job's (`job:` cannot begin a name, so the two never meet). */
export function ownerOf(line: Pick<LogLine, 'app' | 'job'>): string {
  return line.job ? `job:${line.app}` : line.app;
}

function keyOf(app: string, container: string, job: true | undefined): string {
  return `${ownerOf({ app, ...(job ? { job } : {}) })}/${container}`;
}

/** The `system` line standing for `count` dropped lines, e.g. "suppressed 1200 lines (rate limit)". */
export function markerLine(p: Pick<Pending, 'app' | 'container' | 'job' | 'count' | 'ts' | 'reasons'>): LogLine {
  const reasons = [...p.reasons].sort().join(', ');
  return {
    app: p.app,
    container: p.container,
    ...(p.job ? { job: p.job } : {}),
    stream: 'system',
    ts: p.ts,
    line: `suppressed ${p.count} ${p.count === 1 ? 'line' : 'lines'} (${reasons})`,
    suppressed: p.count,
  };
}
