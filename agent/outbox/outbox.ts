/**
 * The agent's outbox: every event, log batch and offline metric sample waits
 * here until the hub acknowledges it. Bounded in bytes, ordered by class
 * priority (classes.ts), each class with a TTL.
 *
 * Two tiers, so an online device never writes to its flash for telemetry:
 * - memory: new messages. Online they are sent and acknowledged within
 *   milliseconds and never touch the disk.
 * - file (outbox-file.ts): a message still waiting after `spillAfterMs` is
 *   written at the next write tick (every `writeIntervalMs`, 30 s), all in one
 *   frame with the tick's acknowledgements; so is everything at once when the
 *   memory tier passes `memoryBytes`, and everything on close.
 *
 * Invariants:
 * - Accounting: `bytes` is the payload bytes of every message held, in
 *   flight or not; a message leaves the count once, by ack, drop or expiry.
 * - Over `maxBytes`, the lowest-priority class loses its oldest messages
 *   first (the file's before the memory's, being older); the loss is counted
 *   per class and reason and handed out by `takeDrops`, as are messages
 *   whose frame on disk turned out unreadable. Messages in flight
 *   in memory are not dropped (their ack is milliseconds away).
 * - A message is handed out by `next`/`take` once until `release` or
 *   `releaseAll` (the link dropped): then it is offered again. The hub
 *   deduplicates by the `seq` inside every payload, so a message whose ack
 *   was lost with the link is delivered twice but ingested once.
 * - Up to the in-flight window of the link, acknowledged-but-unwritten
 *   messages live only in RAM: a crash loses at most those and the last
 *   `spillAfterMs + writeIntervalMs` of unsent ones.
 */
import { DEFAULT_OUTBOX_TTL_MS, OUTBOX_CLASSES, type OutboxClass } from './classes.js';
import { type OpenReport, OutboxFile, type RemovedRow } from './outbox-file.js';

export interface OutboxMessage {
  readonly cls: OutboxClass;
  readonly payload: Buffer;
  readonly createdAt: number;
  /** The file row, once written. */
  rowId?: number;
  inFlight: boolean;
}

export type DropReason = 'full' | 'expired' | 'unreadable';

export type DropCounts = Record<OutboxClass, Record<DropReason, { messages: number; bytes: number }>>;

export interface OutboxStats {
  messages: number;
  bytes: number;
  /** Messages dropped (full or expired) since the agent started. */
  dropped: number;
}

export interface OutboxOptions {
  /** Where the segment files go (`<path>.000001.seg`, …; an outbox file of the previous format there is migrated), or `:memory:`. */
  path: string;
  maxBytes: number;
  ttlMs?: Partial<Record<OutboxClass, number>>;
  /** The memory tier is written out whole beyond this (default 256 KiB). */
  memoryBytes?: number;
  /** A message unsent for this long is written at the next tick (default 1 s). */
  spillAfterMs?: number;
  /**
   * How often waiting messages are written and expired ones removed (default
   * 30 s). Online nothing waits that long; offline each tick writes at least
   * one page of the flash, so fewer, larger writes spare it (BENCHMARKS.md
   * "Agent on its link"), at the price of what a crash can lose.
   */
  writeIntervalMs?: number;
  now?: () => number;
  /** Called after a tick or a push that dropped messages. */
  onDrop?: () => void;
  /**
   * Told when messages leave the memory tier for good: acknowledged, written
   * to the file (its own copy is sent from then on), or dropped and counted.
   * The log collector's ledger (telemetry/logs/log-cursor.ts) needs this.
   */
  onSettled?: (cls: OutboxClass, payloads: Buffer[]) => void;
}

const PAGE = 32;

interface ClassFile {
  /** Rows in the file (in flight or not, not yet acknowledged). */
  rows: number;
  bytes: number;
  /** Rows handed out and not yet acknowledged. */
  inFlight: number;
  /** Rows with ids up to here were handed out. */
  cursor: number;
  /** The next rows after `cursor`, read ahead. */
  page: OutboxMessage[];
}

export class Outbox {
  private readonly file: OutboxFile;
  private readonly now: () => number;
  private readonly ttlMs: Record<OutboxClass, number>;
  private readonly memory = perClass<OutboxMessage[]>(() => []);
  private memoryBytes = 0;
  private readonly files: Record<OutboxClass, ClassFile>;
  private readonly inFlightRows = new Map<number, OutboxMessage>();
  private drops = emptyDrops();
  private droppedTotal = 0;
  private readonly timer: NodeJS.Timeout;
  private closed = false;

  constructor(private readonly options: OutboxOptions) {
    this.file = new OutboxFile(options.path, { diskBudgetBytes: 2 * options.maxBytes, ...(options.now ? { now: options.now } : {}) });
    this.now = options.now ?? Date.now;
    this.ttlMs = { ...DEFAULT_OUTBOX_TTL_MS, ...options.ttlMs };
    const totals = this.file.totals();
    this.files = perClass((cls) => ({ rows: totals[cls].items, bytes: totals[cls].bytes, inFlight: 0, cursor: 0, page: [] }));
    this.timer = setInterval(() => this.tick(), options.writeIntervalMs ?? 30_000);
    this.timer.unref();
  }

  get stats(): OutboxStats {
    let messages = 0;
    let bytes = this.memoryBytes;
    for (const cls of OUTBOX_CLASSES) {
      messages += this.memory[cls].length + this.files[cls].rows;
      bytes += this.files[cls].bytes;
    }
    return { messages, bytes, dropped: this.droppedTotal };
  }

  /** What opening the file found: messages migrated from the previous format, damage skipped. */
  get openReport(): OpenReport {
    return this.file.report;
  }

  /** Messages of a class not yet acknowledged. */
  pending(cls: OutboxClass): number {
    return this.memory[cls].length + this.files[cls].rows;
  }

  push(cls: OutboxClass, payload: Buffer): void {
    if (this.closed) return;
    this.memory[cls].push({ cls, payload, createdAt: this.now(), inFlight: false });
    this.memoryBytes += payload.length;
    const dropped = this.enforceCap();
    if (this.memoryBytes > (this.options.memoryBytes ?? 256 * 1024)) this.write(true);
    if (dropped) this.options.onDrop?.();
  }

  /** The message to send next (highest priority, oldest first), without taking it. */
  next(): OutboxMessage | undefined {
    if (this.closed) return undefined;
    for (const cls of OUTBOX_CLASSES) {
      const fromFile = this.nextFromFile(cls);
      if (fromFile) return fromFile;
      const fromMemory = this.memory[cls].find((m) => !m.inFlight);
      if (fromMemory) return fromMemory;
    }
    return undefined;
  }

  /** Marks `next()`'s message as sent, awaiting its ack. */
  take(message: OutboxMessage): void {
    if (this.closed) return;
    message.inFlight = true;
    if (message.rowId === undefined) return;
    const file = this.files[message.cls];
    if (file.page[0] === message) file.page.shift();
    file.cursor = Math.max(file.cursor, message.rowId);
    file.inFlight++;
    this.inFlightRows.set(message.rowId, message);
  }

  /** The hub has it: forget it. */
  ack(message: OutboxMessage): void {
    if (this.closed) return;
    if (message.rowId !== undefined) {
      // Not in the map: dropped or expired while in flight, already uncounted.
      if (!this.inFlightRows.delete(message.rowId)) return;
      const file = this.files[message.cls];
      file.inFlight--;
      file.rows--;
      file.bytes -= message.payload.length;
      this.file.remove(message.cls, message.rowId);
      return;
    }
    const list = this.memory[message.cls];
    const at = list.indexOf(message);
    if (at < 0) return;
    list.splice(at, 1);
    this.memoryBytes -= message.payload.length;
    this.options.onSettled?.(message.cls, [message.payload]);
  }

  /** Sending it failed: offer it again. */
  release(message: OutboxMessage): void {
    if (this.closed) return;
    message.inFlight = false;
    if (message.rowId === undefined || !this.inFlightRows.delete(message.rowId)) return;
    const file = this.files[message.cls];
    file.inFlight--;
    file.cursor = Math.min(file.cursor, message.rowId - 1);
    file.page = [];
  }

  /** The link dropped: everything in flight will be offered again (the hub drops what it already has, by seq). */
  releaseAll(): void {
    if (this.closed) return;
    for (const cls of OUTBOX_CLASSES) for (const m of this.memory[cls]) m.inFlight = false;
    if (this.inFlightRows.size === 0) return;
    this.inFlightRows.clear();
    for (const cls of OUTBOX_CLASSES) Object.assign(this.files[cls], { inFlight: 0, cursor: 0, page: [] });
  }

  /** Drops and expiries since the last call, or undefined if none. */
  takeDrops(): DropCounts | undefined {
    const drops = this.drops;
    const any = OUTBOX_CLASSES.some((cls) => Object.values(drops[cls]).some((count) => count.messages > 0));
    if (!any) return undefined;
    this.drops = emptyDrops();
    return drops;
  }

  /** Writes everything still held (in flight too: after close nothing will ack it) and closes the file. */
  close(): void {
    if (this.closed) return;
    clearInterval(this.timer);
    for (const cls of OUTBOX_CLASSES) for (const m of this.memory[cls]) m.inFlight = false;
    this.write(true);
    this.file.close();
    this.closed = true;
  }

  /** Expires what is too old, then writes what waited too long, and the acks' deletions. */
  tick(): void {
    if (this.closed) return;
    const dropped = this.expire();
    this.write(false);
    if (dropped) this.options.onDrop?.();
  }

  private nextFromFile(cls: OutboxClass): OutboxMessage | undefined {
    const file = this.files[cls];
    if (file.rows - file.inFlight <= 0) return undefined;
    if (file.page.length === 0) {
      const rows = this.file.page(cls, file.cursor, PAGE);
      this.countLost();
      file.page = rows.map((row) => ({
        cls,
        payload: row.payload,
        createdAt: row.createdAt,
        rowId: row.id,
        inFlight: false,
      }));
    }
    return file.page[0];
  }

  /** One frame: acked rows out, waiting memory messages in (all of them with `all`). */
  private write(all: boolean): void {
    const oldEnough = this.now() - (this.options.spillAfterMs ?? 1_000);
    const spilled: OutboxMessage[] = [];
    for (const cls of OUTBOX_CLASSES) {
      const keep: OutboxMessage[] = [];
      for (const m of this.memory[cls]) {
        if (!m.inFlight && (all || m.createdAt <= oldEnough)) spilled.push(m);
        else keep.push(m);
      }
      this.memory[cls] = keep;
    }
    const ids = this.file.write(spilled);
    this.countLost();
    spilled.forEach((m, i) => {
      m.rowId = ids[i];
      this.memoryBytes -= m.payload.length;
      this.files[m.cls].rows++;
      this.files[m.cls].bytes += m.payload.length;
    });
    if (spilled.length > 0 && this.options.onSettled) {
      for (const cls of OUTBOX_CLASSES) {
        const payloads = spilled.filter((m) => m.cls === cls).map((m) => m.payload);
        if (payloads.length > 0) this.options.onSettled(cls, payloads);
      }
    }
  }

  /** Messages the file found it could not read back (a damaged frame) leave the count as drops. */
  private countLost(): void {
    const lost = this.file.takeLost();
    if (lost.length === 0) return;
    for (const { cls, row } of lost) this.forgetRows(cls, [row], 'unreadable');
    this.options.onDrop?.();
  }

  /** Drops lowest-priority oldest messages until under the cap; true if any went. */
  private enforceCap(): boolean {
    let dropped = false;
    const classesLowFirst = [...OUTBOX_CLASSES].reverse();
    while (this.stats.bytes > this.options.maxBytes) {
      const cls = classesLowFirst.find((c) => this.files[c].rows > 0 || this.memory[c].some((m) => !m.inFlight));
      if (!cls) break;
      if (this.files[cls].rows > 0) {
        this.forgetRows(cls, this.file.dropOldest(cls, this.stats.bytes - this.options.maxBytes), 'full');
      } else {
        const list = this.memory[cls];
        const at = list.findIndex((m) => !m.inFlight);
        const [m] = list.splice(at, 1);
        if (m) this.forgetMemory(m, 'full');
      }
      dropped = true;
    }
    return dropped;
  }

  private expire(): boolean {
    let dropped = false;
    const now = this.now();
    for (const cls of OUTBOX_CLASSES) {
      const before = now - this.ttlMs[cls];
      const keep: OutboxMessage[] = [];
      for (const m of this.memory[cls]) {
        if (!m.inFlight && m.createdAt < before) {
          this.forgetMemory(m, 'expired');
          dropped = true;
        } else keep.push(m);
      }
      this.memory[cls] = keep;
      if (this.files[cls].rows > 0) {
        const removed = this.file.expire(cls, before);
        if (removed.length > 0) {
          this.forgetRows(cls, removed, 'expired');
          dropped = true;
        }
      }
    }
    return dropped;
  }

  private forgetMemory(m: OutboxMessage, reason: DropReason): void {
    this.memoryBytes -= m.payload.length;
    this.count(m.cls, reason, m.payload.length);
    this.options.onSettled?.(m.cls, [m.payload]);
  }

  private forgetRows(cls: OutboxClass, rows: readonly RemovedRow[], reason: DropReason): void {
    const file = this.files[cls];
    for (const row of rows) {
      file.rows--;
      file.bytes -= row.bytes;
      if (this.inFlightRows.delete(row.id)) file.inFlight--;
      this.count(cls, reason, row.bytes);
    }
    // The read-ahead may hold removed rows.
    file.page = [];
  }

  private count(cls: OutboxClass, reason: DropReason, bytes: number): void {
    this.drops[cls][reason].messages++;
    this.drops[cls][reason].bytes += bytes;
    this.droppedTotal++;
  }
}

function perClass<T>(make: (cls: OutboxClass) => T): Record<OutboxClass, T> {
  return Object.fromEntries(OUTBOX_CLASSES.map((cls) => [cls, make(cls)])) as Record<OutboxClass, T>;
}

function emptyDrops(): DropCounts {
  return perClass(() => ({ full: { messages: 0, bytes: 0 }, expired: { messages: 0, bytes: 0 }, unreadable: { messages: 0, bytes: 0 } }));
}
