/**
 * Where the outbox keeps what waited too long in memory (outbox.ts): an
 * append-only log of segment files beside `path` (`<path>.000001.seg`, …),
 * written one page-aligned, compressed frame per write tick
 * (segment-frame.ts), with an index in RAM (ids, classes, times, sizes and
 * where each payload lies; not the payloads). `:memory:` keeps everything in
 * RAM instead, for operators who value their SD card over completeness.
 *
 * Why not SQLite: a tick's few KiB of messages cost SQLite whole B-tree
 * pages, WAL frames, the WAL's last page and its -shm index rewritten, and
 * checkpoints later: 12-16 times the messages' size on the SD card. Here a
 * tick writes its messages once, compressed, in pages no other tick writes
 * (BENCHMARKS.md "Agent on its link" has the measurement). The file system
 * adds the segment's inode block to each tick (the write's new mtime and
 * i_version; ext4's lazytime does not defer it, since an i_version change
 * writes the inode anyway), and a directory entry, an inode and bitmaps to
 * each segment created or deleted. That is why a tick writes one file with
 * one write and nothing beside it: a second file would cost its own page and
 * inode every 30 s.
 *
 * Invariants:
 * - Ids grow with every record written and are never reused while a segment
 *   that may mention them exists; within a class, id order is send order.
 * - A removal (acknowledged, dropped, expired) takes effect in RAM at once
 *   and reaches the disk in the next frame. Until then a crash brings the
 *   record back and it is sent again: the hub keeps one copy per seq.
 * - Segments are deleted only oldest first (a removal in a later segment may
 *   name records of an earlier one, so deleting the later one first could
 *   revive them), or all together once nothing in any of them is live.
 * - Over the disk budget, the oldest segment's live records are copied
 *   forward, that copy is fsynced, and only then is the segment deleted.
 * - A commit is not fsynced (as SQLite's WAL with synchronous=NORMAL before
 *   it): an agent killed keeps every frame written (the page cache has it); a
 *   power cut may lose the last ~30 s of frames, and a torn or damaged frame
 *   is skipped at the next start, never blocking it. Nothing is ever appended
 *   to a segment a previous start wrote, so a torn tail stays a tail.
 */
import { closeSync, fdatasyncSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fsyncDir } from '../fsync-dir.js';
import { classIndex, OUTBOX_CLASSES, type OutboxClass } from './classes.js';
import { readLegacyOutbox, removeLegacyOutbox } from './legacy-sqlite.js';
import { encodeFrame, type FrameRecord, frameAt, frameLength, HEADER_BYTES, scanFrames } from './segment-frame.js';

export const IN_MEMORY = ':memory:';

/** A segment is closed and a new one begun past this size, so space comes back a segment at a time. */
export const SEGMENT_BYTES = 1024 * 1024;
/** Raw bytes of records per frame at most: a frame is read whole to get one payload. */
const FRAME_RECORD_BYTES = 256 * 1024;
/** Frames kept decoded, so reading a page of one class does not inflate the same frame again. */
const DECODED_FRAMES = 8;

export interface StoredMessage {
  id: number;
  createdAt: number;
  payload: Buffer;
}

export interface RemovedRow {
  id: number;
  bytes: number;
}

export interface NewMessage {
  cls: OutboxClass;
  createdAt: number;
  payload: Buffer;
}

export interface OutboxFileOptions {
  /** Bytes of segments beyond which the oldest live records are copied forward (default 2 × 64 MiB). */
  diskBudgetBytes?: number;
  now?: () => number;
}

/** What opening the outbox found that an operator should hear about. */
export interface OpenReport {
  /** Messages moved from an outbox in the previous format. */
  migrated: number;
  /** An old outbox that could not be read, renamed aside. */
  unreadableLegacy?: { movedTo: string; reason: string };
  /** Damaged stretches skipped in segments (a power cut's torn tail, a bad sector). */
  damagedSegments: string[];
}

interface Segment {
  n: number;
  path: string;
  /** Bytes written (every frame ends on a page boundary). */
  bytes: number;
  /** Live records whose current copy is here. */
  live: number;
}

interface FrameRef {
  segment: Segment;
  offset: number;
  length: number;
}

interface Entry {
  id: number;
  cls: number;
  createdAt: number;
  bytes: number;
  live: boolean;
  /** Where it is on disk; undefined in memory mode, which keeps `payload`. */
  frame?: FrameRef;
  slot: number;
  payload?: Buffer;
}

interface ClassIndex {
  /** Sorted by id; removed entries stay, marked, until they are many. */
  entries: Entry[];
  dead: number;
  items: number;
  bytes: number;
}

export class OutboxFile {
  readonly report: OpenReport = { migrated: 0, damagedSegments: [] };
  private readonly inMemory: boolean;
  private readonly classes: ClassIndex[] = OUTBOX_CLASSES.map(() => ({ entries: [], dead: 0, items: 0, bytes: 0 }));
  private segments: Segment[] = [];
  private active: { segment: Segment; fd: number } | undefined;
  private nextSegment = 1;
  private nextId = 1;
  private pendingRemovals: number[] = [];
  private readonly decoded = new Map<FrameRef, FrameRecord[]>();
  private lost: { cls: OutboxClass; row: RemovedRow }[] = [];
  private readonly diskBudget: number;
  /** Set while writing copies: a segment closed meanwhile must reach the disk first. */
  private syncBeforeClosing = false;
  /** Set while moving an old outbox in: every segment it fills is fsynced before the old file goes. */
  private migrating = false;

  constructor(
    private readonly path: string,
    options: OutboxFileOptions = {},
  ) {
    this.inMemory = path === IN_MEMORY;
    this.diskBudget = options.diskBudgetBytes ?? 128 * 1024 * 1024;
    if (this.inMemory) return;
    mkdirSync(dirname(path), { recursive: true });
    this.load();
    this.migrate(options.now ?? Date.now);
  }

  /** Rows and bytes per class, to resume the accounting after a restart. */
  totals(): Record<OutboxClass, { items: number; bytes: number }> {
    return Object.fromEntries(
      OUTBOX_CLASSES.map((cls, i) => [cls, { items: this.classes[i]!.items, bytes: this.classes[i]!.bytes }]),
    ) as Record<OutboxClass, { items: number; bytes: number }>;
  }

  /** The oldest live records of a class after `afterId`. Records found unreadable are left out and handed to `takeLost`. */
  page(cls: OutboxClass, afterId: number, limit: number): StoredMessage[] {
    const index = this.classes[classIndex(cls)]!;
    const out: StoredMessage[] = [];
    for (let i = firstAfter(index.entries, afterId); i < index.entries.length && out.length < limit; i++) {
      const entry = index.entries[i]!;
      if (!entry.live) continue;
      const payload = this.payloadOf(entry);
      if (payload) out.push({ id: entry.id, createdAt: entry.createdAt, payload });
      else this.loseEntry(entry);
    }
    return out;
  }

  /** Records that could not be read back since the last call (a damaged frame): gone, to be counted as lost. */
  takeLost(): { cls: OutboxClass; row: RemovedRow }[] {
    const lost = this.lost;
    this.lost = [];
    return lost;
  }

  /**
   * Appends the inserts and the removals since the last write as one frame
   * (or several, for a large batch); returns the new records' ids in order.
   * With nothing live left anywhere, deletes every segment instead of
   * recording removals.
   */
  write(inserts: readonly NewMessage[]): number[] {
    const fresh = inserts.map((m) => this.addEntry(classIndex(m.cls), this.nextId++, m.createdAt, m.payload));
    if (this.inMemory) return fresh.map((e) => e.id);
    const batch = fresh.map((entry, i) => ({ entry, payload: inserts[i]!.payload }));
    const copies: { entry: Entry; payload: Buffer }[] = [];
    for (const entry of this.copiesOverBudget()) {
      const payload = this.payloadOf(entry);
      if (payload) copies.push({ entry, payload });
      else this.loseEntry(entry);
    }
    this.persist([...batch, ...copies], copies.length > 0);
    return fresh.map((e) => e.id);
  }

  /** The hub has it: it leaves the index now and the disk with the next write. False if it was not live. */
  remove(cls: OutboxClass, id: number): boolean {
    const index = this.classes[classIndex(cls)]!;
    const entry = index.entries[firstAfter(index.entries, id - 1)];
    if (!entry || entry.id !== id || !entry.live) return false;
    this.removeEntry(entry);
    return true;
  }

  /** Removes the oldest records of a class until at least `bytes` are freed (or the class is empty). */
  dropOldest(cls: OutboxClass, bytes: number): RemovedRow[] {
    const removed: RemovedRow[] = [];
    let freed = 0;
    for (const entry of this.classes[classIndex(cls)]!.entries) {
      if (freed >= bytes) break;
      if (!entry.live) continue;
      this.removeEntry(entry);
      removed.push({ id: entry.id, bytes: entry.bytes });
      freed += entry.bytes;
    }
    return removed;
  }

  /** Removes the records of a class created before `createdBefore`. */
  expire(cls: OutboxClass, createdBefore: number): RemovedRow[] {
    const removed: RemovedRow[] = [];
    for (const entry of this.classes[classIndex(cls)]!.entries) {
      if (!entry.live || entry.createdAt >= createdBefore) continue;
      this.removeEntry(entry);
      removed.push({ id: entry.id, bytes: entry.bytes });
    }
    return removed;
  }

  /** Bytes the segments take on disk now. */
  get diskBytes(): number {
    return this.segments.reduce((sum, s) => sum + s.bytes, 0);
  }

  /** Writes the removals not yet on disk, and closes the segment. */
  close(): void {
    if (!this.inMemory && this.pendingRemovals.length > 0) this.persist([], false);
    if (this.active) closeSync(this.active.fd);
    this.active = undefined;
  }

  private addEntry(cls: number, id: number, createdAt: number, payload: Buffer): Entry {
    const entry: Entry = { id, cls, createdAt, bytes: payload.length, live: true, slot: 0 };
    if (this.inMemory) entry.payload = payload;
    const index = this.classes[cls]!;
    index.entries.push(entry);
    index.items++;
    index.bytes += entry.bytes;
    return entry;
  }

  private removeEntry(entry: Entry): void {
    entry.live = false;
    const index = this.classes[entry.cls]!;
    index.items--;
    index.bytes -= entry.bytes;
    index.dead++;
    entry.payload = undefined;
    if (entry.frame) {
      entry.frame.segment.live--;
      this.pendingRemovals.push(entry.id);
    }
    if (index.dead > 1024 && index.dead > index.items) {
      index.entries = index.entries.filter((e) => e.live);
      index.dead = 0;
    }
  }

  private loseEntry(entry: Entry): void {
    this.removeEntry(entry);
    this.lost.push({ cls: OUTBOX_CLASSES[entry.cls]!, row: { id: entry.id, bytes: entry.bytes } });
  }

  private payloadOf(entry: Entry): Buffer | undefined {
    if (entry.payload) return entry.payload;
    const frame = entry.frame;
    if (!frame) return undefined;
    let records = this.decoded.get(frame);
    if (!records) {
      records = this.readFrame(frame);
      if (this.decoded.size >= DECODED_FRAMES) this.decoded.delete(this.decoded.keys().next().value!);
      this.decoded.set(frame, records);
    }
    const record = records[entry.slot];
    return record && record.id === entry.id ? record.payload : undefined;
  }

  private readFrame(frame: FrameRef): FrameRecord[] {
    const bytes = Buffer.alloc(frame.length);
    let fd: number | undefined;
    try {
      fd = openSync(frame.segment.path, 'r');
      let read = 0;
      while (read < bytes.length) {
        const n = readSync(fd, bytes, read, bytes.length - read, frame.offset + read);
        if (n === 0) break;
        read += n;
      }
      return frameAt(bytes, 0)?.records ?? [];
    } catch {
      return [];
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  }

  /** Live records of the oldest segments, while the segments take more than the budget. */
  private copiesOverBudget(): Entry[] {
    let over = this.diskBytes - this.diskBudget;
    if (over <= 0) return [];
    const copies: Entry[] = [];
    for (const segment of this.segments) {
      if (over <= 0 || segment === this.active?.segment) break;
      for (const index of this.classes) for (const e of index.entries) if (e.live && e.frame?.segment === segment) copies.push(e);
      over -= segment.bytes;
    }
    return copies;
  }

  private persist(records: { entry: Entry; payload: Buffer }[], copied: boolean): void {
    if (this.segments.every((s) => s.live === 0)) {
      // Nothing live is left in any segment: drop them all rather than record what was removed.
      this.deleteSegments(this.segments);
      this.pendingRemovals = [];
    }
    let removed = this.pendingRemovals;
    this.pendingRemovals = [];
    if (records.length === 0 && removed.length === 0) return;
    const durable = copied || this.migrating;
    this.syncBeforeClosing = durable;
    for (let start = 0; start < records.length || removed.length > 0; ) {
      let end = start;
      let size = 0;
      while (end < records.length && (end === start || size + records[end]!.payload.length <= FRAME_RECORD_BYTES)) {
        size += records[end]!.payload.length;
        end++;
      }
      this.append(records.slice(start, end), removed);
      removed = [];
      start = end;
    }
    // Copies must be on disk before the segments they came from are deleted (rotate syncs a segment it closes).
    if (durable && this.active) fdatasyncSync(this.active.fd);
    this.syncBeforeClosing = false;
    this.deleteSegments(this.deadPrefix());
  }

  private append(records: { entry: Entry; payload: Buffer }[], removed: number[]): void {
    const bytes = encodeFrame({
      removed,
      records: records.map(({ entry, payload }) => ({ cls: entry.cls, id: entry.id, createdAt: entry.createdAt, payload })),
    });
    if (!this.active || (this.active.segment.bytes > 0 && this.active.segment.bytes + bytes.length > SEGMENT_BYTES)) this.rotate();
    const { segment, fd } = this.active!;
    let written = 0;
    while (written < bytes.length) written += writeSync(fd, bytes, written, bytes.length - written, segment.bytes + written);
    const frame: FrameRef = { segment, offset: segment.bytes, length: frameLength(bytes) ?? HEADER_BYTES };
    segment.bytes += bytes.length;
    records.forEach(({ entry }, slot) => {
      if (entry.frame) entry.frame.segment.live--;
      entry.frame = frame;
      entry.slot = slot;
      segment.live++;
    });
  }

  private rotate(): void {
    if (this.active && this.syncBeforeClosing) fdatasyncSync(this.active.fd);
    if (this.active) closeSync(this.active.fd);
    const n = this.nextSegment++;
    const segment: Segment = { n, path: segmentPath(this.path, n), bytes: 0, live: 0 };
    this.active = { segment, fd: openSync(segment.path, 'w', 0o600) };
    this.segments.push(segment);
  }

  private deadPrefix(): Segment[] {
    const dead: Segment[] = [];
    for (const s of this.segments) {
      if (s.live > 0 || s === this.active?.segment) break;
      dead.push(s);
    }
    return dead;
  }

  private deleteSegments(doomed: readonly Segment[]): void {
    if (doomed.length === 0) return;
    const gone = new Set(doomed);
    if (this.active && gone.has(this.active.segment)) {
      closeSync(this.active.fd);
      this.active = undefined;
    }
    for (const s of doomed) rmSync(s.path, { force: true });
    for (const ref of this.decoded.keys()) if (gone.has(ref.segment)) this.decoded.delete(ref);
    this.segments = this.segments.filter((s) => !gone.has(s));
  }

  /** Replays every segment, oldest first: records in, removals out. */
  private load(): void {
    const byId = new Map<number, Entry>();
    let maxId = 0;
    for (const { n, path } of listSegments(this.path)) {
      this.nextSegment = Math.max(this.nextSegment, n + 1);
      const bytes = readFileSync(path);
      const segment: Segment = { n, path, bytes: bytes.length, live: 0 };
      this.segments.push(segment);
      const frames = scanFrames(bytes);
      let covered = 0;
      for (const frame of frames) {
        covered += frame.length;
        for (const id of frame.removed) {
          const entry = byId.get(id);
          if (entry?.live) this.removeEntry(entry);
          maxId = Math.max(maxId, id);
        }
        const ref: FrameRef = { segment, offset: frame.offset, length: frame.length };
        frame.records.forEach((record, slot) => {
          maxId = Math.max(maxId, record.id);
          // A second copy of a live record (copied forward before a crash) is the same message: keep the first.
          if (byId.has(record.id) || record.cls >= OUTBOX_CLASSES.length) return;
          const entry = this.addEntry(record.cls, record.id, record.createdAt, record.payload);
          entry.frame = ref;
          entry.slot = slot;
          segment.live++;
          byId.set(record.id, entry);
        });
      }
      if (hasDamage(bytes, frames, covered)) this.report.damagedSegments.push(path);
    }
    this.pendingRemovals = [];
    for (const index of this.classes) {
      index.entries = index.entries.filter((e) => e.live).sort((a, b) => a.id - b.id);
      index.dead = 0;
    }
    this.nextId = maxId + 1;
  }

  /**
   * Moves an outbox in the previous format into a segment: written and
   * fsynced before the old file is removed, so a crash in between delivers
   * its messages twice (the hub keeps one), never zero times.
   */
  private migrate(now: () => number): void {
    const legacy = readLegacyOutbox(this.path, now);
    if (legacy.kind === 'unreadable') this.report.unreadableLegacy = { movedTo: legacy.movedTo, reason: legacy.reason };
    if (legacy.kind !== 'rows') return;
    const rows = legacy.rows.filter((r) => r.cls >= 0 && r.cls < OUTBOX_CLASSES.length);
    if (rows.length > 0) {
      this.migrating = true;
      try {
        this.write(rows.map((r) => ({ cls: OUTBOX_CLASSES[r.cls]!, createdAt: r.createdAt, payload: r.payload })));
      } finally {
        this.migrating = false;
      }
      fsyncDir(dirname(this.path));
    }
    removeLegacyOutbox(this.path);
    this.report.migrated = rows.length;
  }
}

export function segmentPath(path: string, n: number): string {
  return `${path}.${String(n).padStart(6, '0')}.seg`;
}

/** The segments of the outbox at `path`, oldest first. */
export function listSegments(path: string): { n: number; path: string }[] {
  const prefix = `${basename(path)}.`;
  const dir = dirname(path);
  const found: { n: number; path: string }[] = [];
  for (const name of readdirSync(dir)) {
    if (!name.startsWith(prefix) || !name.endsWith('.seg')) continue;
    const digits = name.slice(prefix.length, -'.seg'.length);
    if (/^\d+$/.test(digits)) found.push({ n: Number(digits), path: join(dir, name) });
  }
  return found.sort((a, b) => a.n - b.n);
}

/** Index of the first entry with an id above `id`. */
function firstAfter(entries: readonly Entry[], id: number): number {
  let lo = 0;
  let hi = entries.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (entries[mid]!.id <= id) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Bytes outside every intact frame that are not zero padding: something was torn or damaged. */
function hasDamage(bytes: Buffer, frames: readonly { offset: number; length: number }[], covered: number): boolean {
  if (covered === bytes.length) return false;
  let at = 0;
  for (const frame of [...frames, { offset: bytes.length, length: 0 }]) {
    for (let i = at; i < frame.offset; i++) if (bytes[i] !== 0) return true;
    at = frame.offset + frame.length;
  }
  return false;
}
