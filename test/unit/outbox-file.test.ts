/**
 * The outbox's segment files as the SD card and the next start see them:
 * what an offline hour writes, that a tick never rewrites an earlier tick's
 * pages, that a later tick changes nothing but its segment (inotify) and
 * costs the disk its frame's page and at most the segment's inode block (the
 * process's own write counter), what a kill, a torn tail or a damaged frame loses (and that none
 * blocks the start), that delivered messages stay delivered across a restart
 * and their segments are deleted, the disk budget, and an outbox left in the
 * previous (SQLite) format moved over without losing a message.
 */
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  copyFileSync,
  existsSync,
  fsyncSync,
  openSync,
  readdirSync,
  readFileSync,
  statSync,
  truncateSync,
  watch,
  writeFileSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { describeDrops } from '../../agent/outbox/drop-report.js';
import { Outbox, type OutboxOptions } from '../../agent/outbox/outbox.js';
import { listSegments, OutboxFile, SEGMENT_BYTES } from '../../agent/outbox/outbox-file.js';
import { PAGE_BYTES } from '../../agent/outbox/segment-frame.js';
import { Cleanup } from '../support/cleanup.js';
import { drain } from '../support/outbox-drain.js';
import { scratchDir } from '../support/scratch.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const MiB = 1024 * 1024;

function tempPath(): string {
  return join(scratchDir('flotilla-outbox-file-'), 'outbox.db');
}

function open(path: string, clock: { t: number }, options: Partial<OutboxOptions> = {}): Outbox {
  const outbox = new Outbox({ path, maxBytes: 64 * MiB, now: () => clock.t, writeIntervalMs: 3_600_000, ...options });
  cleanup.add('outbox', () => outbox.close());
  return outbox;
}

/** Bytes deflate cannot shrink. */
const noise = (n: number) => randomBytes(n);

function segmentBytes(path: string): number {
  return listSegments(path).reduce((sum, s) => sum + statSync(s.path).size, 0);
}

/** Bytes this process has caused to be written to a block device so far (counted when it dirties a page). */
function writeBytes(): number {
  return Number(/^write_bytes: (\d+)$/m.exec(readFileSync('/proc/self/io', 'utf8'))?.[1]);
}

/** What the kernel's writeback does in the 30 s between two ticks: every dirty page of the dir's files reaches the disk. */
function writeBack(dir: string): void {
  for (const name of ['.', ...readdirSync(dir)]) {
    const fd = openSync(join(dir, name), 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }
}

/** A log batch as the agent queues it: one 73-byte numbered line, as in BENCHMARKS.md's load. */
function logBatch(seq: number, app: string): Buffer {
  const line = `${app} line ${String(seq).padStart(6, '0')} the quick brown fox jumps over the lazy dog`.slice(0, 73);
  return Buffer.from(
    JSON.stringify({
      seq,
      lines: [{ app, container: 'main', stream: 'stdout', ts: new Date(1_700_000_000_000 + seq * 1000).toISOString(), line }],
    }),
  );
}

/** A metrics sample of about the size the agent sends (1.3 KiB), with values that change. */
function metricsSample(seq: number): Buffer {
  const n = (base: number) => Math.round(base * (1 + ((seq * 7919) % 97) / 1000));
  const container = (app: string) => ({
    app,
    container: 'main',
    id: `${app}0123456789abcdef`.slice(0, 12),
    cpuPercent: ((seq * 13) % 100) / 10,
    memBytes: n(4_200_000),
    netRxBytes: n(120_000) + seq * 31,
    netTxBytes: n(80_000) + seq * 17,
    blkReadBytes: n(1_000_000),
    blkWriteBytes: n(2_000_000) + seq * 4096,
  });
  return Buffer.from(
    JSON.stringify({
      seq,
      ts: new Date(1_700_000_000_000 + seq * 10_000).toISOString(),
      host: {
        cpuPercent: ((seq * 37) % 1000) / 10,
        cpuCount: 4,
        load1: ((seq * 11) % 300) / 100,
        load5: ((seq * 7) % 200) / 100,
        load15: ((seq * 3) % 100) / 100,
        memTotalBytes: 4_047_000_000,
        memAvailableBytes: n(3_100_000_000),
        memUsedBytes: n(900_000_000),
        disks: [{ name: 'root', path: '/', usedBytes: n(10_000_000_000), freeBytes: n(20_000_000_000), totalBytes: 31_000_000_000 }],
        temperatureC: 40 + (seq % 90) / 10,
        netRxBytes: n(5_000_000) + seq * 977,
        netTxBytes: n(3_000_000) + seq * 613,
        uptimeSeconds: 3600 + seq * 10,
      },
      containers: [container('tick-2s'), container('tick-5s'), container('tick-10s')],
      agent: {
        rssBytes: n(60_000_000),
        heapUsedBytes: n(20_000_000),
        logLinesDropped: 0,
        outbox: { messages: seq, bytes: seq * 300, dropped: 0 },
      },
    }),
  );
}

describe('outbox segment files', () => {
  it('an offline hour at three apps, 0.8 lines/s and a sample every 10 s takes under 1 MiB, less than the messages kept', () => {
    const clock = { t: 0 };
    const path = tempPath();
    const outbox = open(path, clock, { writeIntervalMs: 30_000 });
    let kept = 0;
    const push = (cls: 'events' | 'logs' | 'metrics', payload: Buffer) => {
      outbox.push(cls, payload);
      kept += payload.length;
    };
    let seq = 0;
    for (let s = 1; s <= 3600; s++) {
      clock.t = s * 1000;
      if (s % 2 === 0) push('logs', logBatch(++seq, 'tick-2s'));
      if (s % 5 === 1) push('logs', logBatch(++seq, 'tick-5s'));
      if (s % 10 === 3) push('logs', logBatch(++seq, 'tick-10s'));
      if (s % 10 === 0) push('metrics', metricsSample(s / 10));
      if (s % 300 === 150)
        push(
          'events',
          Buffer.from(
            JSON.stringify({
              seq: s,
              ts: new Date(s * 1000).toISOString(),
              type: 'started',
              app: 'tick-10s',
              message: 'container started',
            }),
          ),
        );
      if (s % 30 === 0) outbox.tick();
    }
    const written = segmentBytes(path);
    expect(kept).toBeGreaterThan(850 * 1024);
    expect(written).toBeLessThanOrEqual(MiB);
    expect(written).toBeLessThan(kept);
    for (const s of listSegments(path)) expect(statSync(s.path).size % PAGE_BYTES).toBe(0);
    // All of it is there for the next start (with the last second's, which close writes).
    const held = outbox.stats.messages;
    outbox.close();
    const reader = new OutboxFile(path);
    expect(Object.values(reader.totals()).reduce((sum, t) => sum + t.items, 0)).toBe(held);
    reader.close();
  });

  it('a tick appends whole pages and never rewrites a byte an earlier tick wrote', () => {
    const clock = { t: 0 };
    const path = tempPath();
    const outbox = open(path, clock);
    let before = Buffer.alloc(0);
    for (let tick = 1; tick <= 20; tick++) {
      for (let i = 0; i < 7; i++) outbox.push('logs', logBatch(tick * 10 + i, 'tick-2s'));
      clock.t += 30_000;
      outbox.tick();
      const [segment] = listSegments(path);
      const now = readFileSync(segment!.path);
      expect(now.length % PAGE_BYTES).toBe(0);
      expect(now.length).toBeGreaterThan(before.length);
      expect(now.subarray(0, before.length).equals(before)).toBe(true);
      before = now;
    }
  });

  it("a later tick changes nothing but its segment: its frame's page and at most the segment's inode block", async (ctx) => {
    const clock = { t: 0 };
    const path = tempPath();
    const dir = dirname(path);
    const probe = writeBytes();
    writeFileSync(join(dir, 'probe'), Buffer.alloc(PAGE_BYTES, 1));
    writeBack(dir);
    if (!(writeBytes() > probe)) ctx.skip('the temp dir is on a file system that counts no writes (tmpfs)');
    const outbox = open(path, clock);
    let seq = 0;
    const tick = async () => {
      for (let i = 0; i < 14; i++) outbox.push('logs', logBatch(++seq, 'tick-2s'));
      outbox.push('metrics', metricsSample(seq));
      clock.t += 30_000;
      outbox.tick();
      writeBack(dir);
      // The kernel's coarse clock moves on between ticks, as in 30 s, so each write sets a new mtime.
      await sleep(20);
    };
    await tick(); // creates the segment: its directory entry, inode and bitmaps are a once-per-segment cost
    const events: string[] = [];
    const watcher = watch(dir, (type, name) => events.push(`${type} ${name}`));
    cleanup.add('watcher', () => watcher.close());
    await sleep(20);
    const before = writeBytes();
    const sizeBefore = segmentBytes(path);
    const ticks = 10;
    for (let i = 0; i < ticks; i++) await tick();
    const spent = writeBytes() - before;
    await sleep(100);
    const segment = basename(listSegments(path)[0]!.path);
    expect(events).toEqual(Array.from({ length: ticks }, () => `change ${segment}`));
    expect(segmentBytes(path) - sizeBefore).toBe(ticks * PAGE_BYTES);
    // Every frame's page is counted. The write's new mtime dirties the inode's block too; on ext4 without a
    // journal that is counted when the block was clean (the kernel's flusher wrote it since), which at 30 s
    // ticks is every tick (with a journal, jbd2 writes it and is charged instead).
    expect(spent).toBeGreaterThanOrEqual(ticks * PAGE_BYTES);
    expect(spent).toBeLessThanOrEqual(ticks * 2 * PAGE_BYTES);
  });

  it('keeps what was written when the agent is killed (never closed), and offers it in order at the next start', () => {
    const clock = { t: 0 };
    const path = tempPath();
    const killed = open(path, clock);
    killed.push('logs', Buffer.from('l1'));
    killed.push('events', Buffer.from('e1'));
    clock.t += 2_000;
    killed.tick();
    killed.push('logs', Buffer.from('l2'));
    clock.t += 2_000;
    killed.tick();
    killed.push('logs', Buffer.from('unwritten')); // still in RAM: a kill loses it
    const next = open(path, clock);
    expect(drain(next)).toEqual(['e1', 'l1', 'l2']);
  });

  it('after a torn last frame, starts with everything before it and goes on writing', () => {
    const clock = { t: 0 };
    const path = tempPath();
    const first = open(path, clock);
    for (let tick = 1; tick <= 5; tick++) {
      // Incompressible, so each frame takes two pages.
      first.push('logs', Buffer.concat([Buffer.from(`tick ${tick}.`), noise(5000)]));
      clock.t += 2_000;
      first.tick();
    }
    const [segment] = listSegments(path);
    // A power cut in the middle of the last frame: only its first bytes reached the card.
    const size = statSync(segment!.path).size;
    truncateSync(segment!.path, size - 2 * PAGE_BYTES + 100);

    const second = open(path, clock);
    expect(second.openReport.damagedSegments).toEqual([segment!.path]);
    second.push('logs', Buffer.from('after'));
    clock.t += 2_000;
    second.tick();
    const third = open(path, clock);
    expect(drain(third).map((p) => p.split('.')[0])).toEqual(['tick 1', 'tick 2', 'tick 3', 'tick 4', 'after']);
  });

  it('skips a damaged frame and keeps the frames after it; a segment of garbage or zeros does not stop the start', () => {
    const clock = { t: 0 };
    const path = tempPath();
    const first = open(path, clock);
    for (let tick = 1; tick <= 4; tick++) {
      first.push('events', Buffer.from(`event ${tick}`));
      clock.t += 2_000;
      first.tick();
    }
    const [segment] = listSegments(path);
    const bytes = readFileSync(segment!.path);
    expect(bytes.length).toBe(4 * PAGE_BYTES);
    bytes[PAGE_BYTES + 20] = (bytes[PAGE_BYTES + 20]! + 1) % 256; // one flipped bit's worth in the second frame's body
    writeFileSync(segment!.path, bytes);
    writeFileSync(`${path}.000090.seg`, Buffer.from('not a frame at all, and no header either'.repeat(300)));
    writeFileSync(`${path}.000091.seg`, Buffer.alloc(3 * PAGE_BYTES)); // allocated, never written: zeros

    const second = open(path, clock);
    expect(second.openReport.damagedSegments).toEqual([segment!.path, `${path}.000090.seg`]);
    expect(drain(second)).toEqual(['event 1', 'event 3', 'event 4']);
    second.tick();
    // Nothing live is left: every segment, the damaged ones too, is gone.
    expect(listSegments(path)).toEqual([]);
  });

  it('counts messages whose frame turned unreadable while the agent ran as dropped, and says so', () => {
    const clock = { t: 0 };
    const path = tempPath();
    const outbox = open(path, clock);
    outbox.push('logs', Buffer.from('l1'));
    outbox.push('logs', Buffer.from('l2'));
    clock.t += 2_000;
    outbox.tick();
    outbox.push('logs', Buffer.from('l3'));
    clock.t += 2_000;
    outbox.tick();
    const [segment] = listSegments(path);
    const bytes = readFileSync(segment!.path);
    bytes[20] = (bytes[20]! + 1) % 256; // the first frame (l1, l2) goes bad on the card
    writeFileSync(segment!.path, bytes);
    expect(drain(outbox)).toEqual(['l3']);
    const drops = outbox.takeDrops()!;
    expect(drops.logs.unreadable).toEqual({ messages: 2, bytes: 4 });
    expect(describeDrops(drops)).toBe('dropped undelivered messages, unreadable on disk: 2 logs (4 B)');
    expect(outbox.stats).toMatchObject({ messages: 0, bytes: 0, dropped: 2 });
  });

  it('does not offer again after a restart what was acknowledged or dropped, and deletes segments once all is delivered', () => {
    const clock = { t: 0 };
    const path = tempPath();
    const first = open(path, clock, { maxBytes: 10_000 });
    for (let i = 1; i <= 6; i++) first.push('logs', Buffer.from(`l${i}`.padEnd(1000, '.')));
    for (let i = 1; i <= 3; i++) first.push('metrics', Buffer.from(`m${i}`.padEnd(1000, '.')));
    clock.t += 2_000;
    first.tick();
    for (const _ of [1, 2]) {
      const m = first.next()!;
      first.take(m);
      first.ack(m); // l1, l2 delivered
    }
    first.push('events', Buffer.from('e1'.padEnd(5500, '.'))); // over the cap: m1, m2, m3 dropped
    expect(first.takeDrops()?.metrics.full.messages).toBe(3);
    clock.t += 2_000;
    first.tick();
    expect(listSegments(path)).toHaveLength(1);

    const second = open(path, clock, { maxBytes: 10_000 });
    expect(second.stats.messages).toBe(5);
    expect(drain(second).map((p) => p.replace(/\.+$/, ''))).toEqual(['e1', 'l3', 'l4', 'l5', 'l6']);
    second.tick();
    expect(listSegments(path)).toEqual([]);
  });

  it('stays within its disk budget by copying live records forward out of the oldest segment', () => {
    const path = tempPath();
    const budget = 3 * SEGMENT_BYTES;
    const file = new OutboxFile(path, { diskBudgetBytes: budget });
    cleanup.add('file', () => file.close());
    const [event] = file.write([{ cls: 'events', createdAt: 1, payload: Buffer.from('the one event that stays') }]);
    let peak = 0;
    for (let i = 0; i < 60; i++) {
      const [id] = file.write([{ cls: 'logs', createdAt: 2, payload: noise(200_000) }]);
      file.remove('logs', id!); // delivered at once, but the event keeps the first segment
      peak = Math.max(peak, file.diskBytes);
    }
    expect(peak).toBeLessThanOrEqual(budget + SEGMENT_BYTES);
    file.close(); // the last removal reaches the disk
    expect(segmentBytes(path)).toBeLessThanOrEqual(budget + SEGMENT_BYTES);
    const reader = new OutboxFile(path);
    expect(reader.page('events', 0, 10).map((m) => [m.id, m.payload.toString()])).toEqual([[event, 'the one event that stays']]);
    expect(reader.totals().logs.items).toBe(0);
    reader.close();
  });
});

describe('an outbox in the previous (SQLite) format', () => {
  /** The previous agent's file, as a kill -9 leaves it: rows still in the WAL, never checkpointed. */
  function legacyOutbox(path: string, rows: [cls: number, payload: string][]): void {
    const dir = scratchDir('flotilla-outbox-legacy-');
    const live = join(dir, 'outbox.db');
    const db = new Database(live);
    db.pragma('journal_mode = WAL');
    db.exec(`CREATE TABLE outbox (id INTEGER PRIMARY KEY, cls INTEGER NOT NULL, created_at INTEGER NOT NULL, bytes INTEGER NOT NULL, payload BLOB NOT NULL);
      CREATE INDEX outbox_by_class ON outbox (cls, id);`);
    const insert = db.prepare('INSERT INTO outbox (cls, created_at, bytes, payload) VALUES (?, ?, ?, ?)');
    rows.forEach(([cls, payload], i) => {
      insert.run(cls, 1_000 + i, payload.length, Buffer.from(payload));
    });
    for (const suffix of ['', '-wal', '-shm']) copyFileSync(live + suffix, path + suffix);
    expect(statSync(`${path}-wal`).size).toBeGreaterThan(0);
    db.close();
  }

  it('is moved into segments at the start and delivered in order; the old files are removed', () => {
    const clock = { t: 10_000 };
    const path = tempPath();
    legacyOutbox(path, [
      [2, 'm1'],
      [1, 'l1'],
      [0, 'e1'],
      [1, 'l2'],
      [0, 'e2'],
    ]);
    const first = open(path, clock);
    expect(first.openReport.migrated).toBe(5);
    expect(existsSync(path) || existsSync(`${path}-wal`) || existsSync(`${path}-shm`)).toBe(false);
    expect(listSegments(path)).toHaveLength(1);
    first.push('logs', Buffer.from('l3'));
    first.close();

    const second = open(path, clock);
    expect(second.openReport.migrated).toBe(0);
    expect(drain(second)).toEqual(['e1', 'e2', 'l1', 'l2', 'l3', 'm1']);
  });

  it('larger than a segment is moved whole, over several segments, in order', () => {
    const clock = { t: 10_000 };
    const path = tempPath();
    const rows: [number, string][] = Array.from({ length: 12 }, (_, i) => [1, `l${i + 1} ${noise(150_000).toString('base64')}`]);
    legacyOutbox(path, rows);
    const outbox = open(path, clock);
    expect(outbox.openReport.migrated).toBe(12);
    expect(listSegments(path).length).toBeGreaterThan(1);
    expect(drain(outbox).map((p) => p.split(' ')[0])).toEqual(rows.map(([, p]) => p.split(' ')[0]));
  });

  it('delivers its messages even when a crash came between the copy and the removal (twice rather than never)', () => {
    const clock = { t: 10_000 };
    const path = tempPath();
    legacyOutbox(path, [
      [0, 'e1'],
      [1, 'l1'],
    ]);
    const saved = join(scratchDir('flotilla-outbox-legacy-'), 'copy');
    for (const suffix of ['', '-wal', '-shm']) copyFileSync(path + suffix, saved + suffix);
    open(path, clock).close();
    // The old file is back beside the segments, as if the removal never reached the disk.
    for (const suffix of ['', '-wal', '-shm']) copyFileSync(saved + suffix, path + suffix);
    const again = open(path, clock);
    const sent = drain(again);
    expect(new Set(sent)).toEqual(new Set(['e1', 'l1']));
    expect(sent.filter((p) => p === 'e1').length).toBeGreaterThanOrEqual(1);
  });

  it('that SQLite cannot read is renamed aside, not deleted, and the start goes on', () => {
    const clock = { t: 42 };
    const path = tempPath();
    writeFileSync(path, Buffer.from('this was never a database '.repeat(400)));
    const outbox = open(path, clock);
    expect(outbox.openReport.unreadableLegacy?.movedTo).toBe(`${path}.unreadable-42`);
    expect(readFileSync(`${path}.unreadable-42`, 'utf8')).toContain('this was never a database');
    outbox.push('events', Buffer.from('e1'));
    expect(drain(outbox)).toEqual(['e1']);
    expect(readdirSync(join(path, '..')).sort()).toEqual(['outbox.db.unreadable-42']);
  });
});
