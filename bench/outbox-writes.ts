/**
 * What the agent's offline outbox writes to its disk: the outbox as it is now
 * (segment files) against the SQLite outbox it replaced, in the same run, on
 * the same disk, at the load of BENCHMARKS.md "Agent on its link".
 *
 *   flock /tmp/flotilla-bench.lock npx tsx bench/outbox-writes.ts [--hours 1] [--tick-s 30] [--old-tick-s 30,5] [--real-s 0] [--dir /var/tmp] [--json]
 *
 * Each layout runs the real Outbox class in a child process of its own; the
 * previous one is taken from git (`git show OLD_COMMIT:agent/outbox/…`) into
 * a scratch dir. The child pushes what the agent queues while offline: three
 * apps' log batches (one 73-byte line each, every 2 s, 5 s and 10 s: 0.8
 * lines/s, 210 batches in 5 minutes, as the benchmark counted 214), a metrics
 * sample every 10 s (~1.36 KiB, as measured there) and two events every 5
 * minutes. Nothing is acknowledged (the link is down).
 *
 * Simulated mode (default): the outbox's clock is injected and `--hours` of
 * pushes and write ticks run as fast as they go. After every tick the child
 * fsyncs every file in its dir, as the kernel's writeback would have done in
 * the 30 s before the next tick (dirty pages expire after 30 s; the flusher
 * runs every 5 s): a page dirtied again by the next tick is counted again,
 * as it is on a device. Without that, a compressed hour would count a page
 * rewritten at every tick only once. It counts the files' own pages, not
 * their metadata: each write's new mtime dirties the inode's block, but fsync
 * leaves that block's page in the block device's cache marked dirty until the
 * kernel's flusher writes it, so ticks microseconds apart are charged for it
 * once. Real mode, 30 s apart, is charged for it at every tick.
 *
 * Real mode (`--real-s N`): both layouts side by side in real time, the
 * outbox's own 30 s timer, no fsync: the kernel's writeback as it is.
 *
 * Disk is the child's `/proc/self/io` `write_bytes` from after the outbox is
 * opened to the end of the window (block-layer writes the process caused,
 * counted when it dirties a page; the ext4 journal, written by jbd2, is not
 * counted). Kept is the payload bytes the outbox holds at the end. Write
 * amplification is the one over the other. "After the first tick" is the
 * same count from 2 s after the first tick (which creates the files) to the
 * end: what every later tick costs, without the files' creation. Then the
 * link comes back in the
 * child: everything is taken and acknowledged, and one more tick runs;
 * those writes are shown apart.
 */
import { execFileSync, spawn } from 'node:child_process';
import {
  closeSync,
  fsyncSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

/** The last commit whose outbox kept its messages in SQLite. */
const OLD_COMMIT = '9aa96f4';
const HERE = fileURLToPath(import.meta.url);
const REPO = resolve(dirname(HERE), '..');

const { values } = parseArgs({
  options: {
    child: { type: 'boolean', default: false },
    layout: { type: 'string', default: 'new' },
    outbox: { type: 'string' },
    legacy: { type: 'string' },
    hours: { type: 'string', default: '1' },
    'tick-s': { type: 'string', default: '30' },
    'old-tick-s': { type: 'string', default: '30,5' },
    'real-s': { type: 'string', default: '0' },
    dir: { type: 'string', default: '/var/tmp' },
    json: { type: 'boolean', default: false },
  },
});

interface Io {
  writeBytes: number;
  cancelledWriteBytes: number;
}

interface ChildResult {
  layout: string;
  tickS: number;
  simulatedS: number;
  wallS: number;
  pushed: { messages: number; bytes: number; byClass: Record<string, { messages: number; bytes: number }> };
  kept: { messages: number; bytes: number };
  offline: Io;
  /** From 2 s after the first tick to the end of the window. */
  steady: Io & { seconds: number };
  delivery: Io & { sent: number };
  filesAfterOffline: Record<string, number>;
  /** Inode numbers of the outbox's dir and files: 16 to a 4 KiB inode-table block, so neighbours share one. */
  inodes: Record<string, number>;
}

function readIo(): Io {
  const text = readFileSync('/proc/self/io', 'utf8');
  const field = (name: string) => Number(new RegExp(`^${name}: (\\d+)$`, 'm').exec(text)?.[1] ?? Number.NaN);
  return { writeBytes: field('write_bytes'), cancelledWriteBytes: field('cancelled_write_bytes') };
}

const diff = (a: Io, b: Io): Io => ({
  writeBytes: b.writeBytes - a.writeBytes,
  cancelledWriteBytes: b.cancelledWriteBytes - a.cancelledWriteBytes,
});

// --- The load: what the agent queues while offline.

const NS_TS = (ms: number) => `${new Date(ms).toISOString().slice(0, -1)}${String((ms * 7919) % 1_000_000).padStart(6, '0')}Z`;

function logLine(app: string, n: number, ms: number) {
  const text = `${app} ${String(n).padStart(6, '0')} sensor reading ok temperature=21.${n % 10}C humidity=4${n % 10}%`
    .slice(0, 73)
    .padEnd(73, '.');
  return { app, container: 'main', stream: 'stdout', ts: NS_TS(ms), line: text };
}

const hex = (seed: string) =>
  Array.from({ length: 64 }, (_, i) => '0123456789abcdef'[(seed.charCodeAt(i % seed.length) * (i + 7)) % 16]).join('');

function metricsSample(seq: number, ms: number, outbox: { messages: number; bytes: number }) {
  const wobble = (base: number, k: number) => Math.round(base * (1 + (((seq * k) % 97) - 48) / 2000));
  const container = (app: string, i: number) => ({
    app,
    container: 'main',
    id: hex(app),
    cpuPercent: Math.round(((seq * (13 + i)) % 250) / 10) / 10,
    memBytes: wobble(1_400_000 + i * 300_000, 31 + i),
    netRxBytes: 1_200 * seq + i * 17,
    netTxBytes: 900 * seq + i * 29,
    blkReadBytes: 2_342_912 + i * 4096,
    blkWriteBytes: 8_192 * (i + 1),
    pids: 1,
    restartCount: 0,
  });
  return {
    seq,
    ts: new Date(ms).toISOString(),
    host: {
      cpuPercent: Math.round((seq * 37) % 3000) / 100,
      cpuCount: 4,
      load1: ((seq * 11) % 300) / 100,
      load5: ((seq * 7) % 200) / 100,
      load15: ((seq * 3) % 100) / 100,
      memTotalBytes: 3_978_170_368,
      memAvailableBytes: wobble(3_120_000_000, 17),
      memUsedBytes: wobble(858_000_000, 19),
      disks: [
        {
          name: 'root',
          path: '/',
          usedBytes: 9_876_543_210 + seq * 4096,
          freeBytes: 19_123_456_789 - seq * 4096,
          totalBytes: 31_000_000_000,
        },
        { name: 'data', path: '/var/lib/docker', usedBytes: 2_345_678_901, freeBytes: 26_654_321_099, totalBytes: 29_000_000_000 },
      ],
      temperatureC: 45 + (seq % 90) / 10,
      netRxBytes: 48_213_004 + seq * 2_977,
      netTxBytes: 12_774_190 + seq * 1_613,
      uptimeSeconds: 86_400 + seq * 10,
    },
    containers: [container('tick-2s', 0), container('tick-5s', 1), container('tick-10s', 2)],
    agent: {
      rssBytes: wobble(92_000_000, 23),
      cpuPercent: 0.8,
      logLinesDropped: 0,
      outbox: { messages: outbox.messages, bytes: outbox.bytes, dropped: 0 },
    },
  };
}

// --- The child: one layout, one window.

interface OutboxLike {
  push(cls: 'events' | 'logs' | 'metrics', payload: Buffer): void;
  next(): { payload: Buffer } | undefined;
  take(m: unknown): void;
  ack(m: unknown): void;
  tick(): void;
  close(): void;
  readonly stats: { messages: number; bytes: number };
}

/** What the kernel's writeback does between two 30 s ticks: every dirty page of the outbox's files goes to disk. */
function writeBack(dir: string): void {
  for (const name of readdirSync(dir)) {
    let fd: number | undefined;
    try {
      fd = openSync(join(dir, name), 'r');
      fsyncSync(fd);
    } catch {
      // Deleted between the listing and the open.
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  }
}

async function child(): Promise<void> {
  const layout = values.layout;
  const path = values.outbox!;
  const dir = dirname(path);
  const realS = Number(values['real-s']);
  const tickS = Number(values['tick-s']);
  const simulatedS = realS > 0 ? realS : Math.round(Number(values.hours) * 3600);
  const modulePath = layout === 'old' ? join(values.legacy!, 'outbox.ts') : join(REPO, 'agent/outbox/outbox.ts');
  const { Outbox } = (await import(pathToFileURL(modulePath).href)) as { Outbox: new (o: object) => OutboxLike };
  const clock = { t: Date.now() };
  const outbox = new Outbox({
    path,
    maxBytes: 64 * 1024 * 1024,
    ...(realS > 0 ? {} : { now: () => clock.t, writeIntervalMs: 24 * 3_600_000 }),
  });
  const pushed: ChildResult['pushed'] = { messages: 0, bytes: 0, byClass: {} };
  const push = (cls: 'events' | 'logs' | 'metrics', message: object) => {
    const payload = Buffer.from(JSON.stringify(message));
    outbox.push(cls, payload);
    pushed.messages++;
    pushed.bytes += payload.length;
    const c = pushed.byClass[cls] ?? { messages: 0, bytes: 0 };
    pushed.byClass[cls] = c;
    c.messages++;
    c.bytes += payload.length;
  };
  let logSeq = 0;
  let eventSeq = 0;
  const lineNo: Record<string, number> = { 'tick-2s': 0, 'tick-5s': 0, 'tick-10s': 0 };
  /** One second of the apps' output and the agent's samples. */
  const second = (s: number, ms: number) => {
    const apps = [s % 2 === 0 && 'tick-2s', s % 5 === 1 && 'tick-5s', s % 10 === 3 && 'tick-10s'].filter((a): a is string => Boolean(a));
    // Lines printed within one 250 ms batch window go in one batch.
    if (apps.length > 0) push('logs', { seq: ++logSeq, lines: apps.map((app) => logLine(app, ++lineNo[app]!, ms)) });
    if (s % 10 === 0) push('metrics', metricsSample(s / 10, ms, outbox.stats));
    if (s % 150 === 75)
      push('events', {
        seq: ++eventSeq,
        ts: new Date(ms).toISOString(),
        type: 'started',
        app: 'tick-10s',
        message: 'tick-10s/main started (container 3f2a9c1b7d4e)',
      });
  };

  const started = Date.now();
  const io0 = readIo();
  let ioFirstTick: Io | undefined;
  const firstTickSeen = (s: number) => {
    if (s === tickS + 2) ioFirstTick = readIo();
  };
  if (realS > 0) {
    await new Promise<void>((done) => {
      let s = 0;
      const timer = setInterval(() => {
        second(++s, Date.now());
        firstTickSeen(s);
        if (s >= simulatedS) {
          clearInterval(timer);
          done();
        }
      }, 1000);
    });
  } else {
    for (let s = 1; s <= simulatedS; s++) {
      clock.t += 1000;
      second(s, clock.t);
      if (s % tickS === 0) {
        outbox.tick();
        writeBack(dir);
      }
      firstTickSeen(s);
    }
  }
  const io1 = readIo();
  const kept = { messages: outbox.stats.messages, bytes: outbox.stats.bytes };
  const filesAfterOffline = Object.fromEntries(readdirSync(dir).map((name) => [name, statSync(join(dir, name)).size]));
  const inodes = Object.fromEntries(['.', ...readdirSync(dir)].map((name) => [name, statSync(join(dir, name)).ino]));

  // The link is back: everything goes out and is acknowledged, then one more tick.
  let sent = 0;
  for (let m = outbox.next(); m; m = outbox.next()) {
    outbox.take(m);
    outbox.ack(m);
    sent++;
  }
  clock.t += tickS * 1000;
  outbox.tick();
  writeBack(dir);
  const io2 = readIo();
  outbox.close();
  const result: ChildResult = {
    layout,
    tickS,
    simulatedS,
    wallS: (Date.now() - started) / 1000,
    pushed,
    kept,
    offline: diff(io0, io1),
    steady: { ...diff(ioFirstTick ?? io1, io1), seconds: ioFirstTick ? simulatedS - tickS - 2 : 0 },
    delivery: { ...diff(io1, io2), sent },
    filesAfterOffline,
    inodes,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

// --- The parent: both layouts, one table.

function extractOldOutbox(into: string): void {
  const betterSqlite = createRequire(HERE).resolve('better-sqlite3');
  for (const file of ['outbox.ts', 'outbox-file.ts', 'classes.ts']) {
    let text = execFileSync('git', ['show', `${OLD_COMMIT}:agent/outbox/${file}`], { cwd: REPO, encoding: 'utf8' });
    // The scratch dir has no node_modules beside it.
    text = text.replace("from 'better-sqlite3'", `from '${pathToFileURL(betterSqlite).href}'`);
    writeFileSync(join(into, file), text);
  }
}

function runChild(layout: string, tickS: number, scratch: string, legacy: string): Promise<ChildResult> {
  const outboxDir = mkdtempSync(join(scratch, `${layout}-${tickS}s-`));
  const args = ['--import', 'tsx', HERE, '--child', '--layout', layout, '--outbox', join(outboxDir, 'outbox.db'), '--legacy', legacy];
  args.push('--hours', values.hours, '--tick-s', String(tickS), '--real-s', values['real-s']);
  return new Promise((done, fail) => {
    // tsx's compile cache would write its own files into the window.
    const env = { ...process.env, TSX_DISABLE_CACHE: '1' };
    const proc = spawn(process.execPath, args, { cwd: REPO, env, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    proc.stdout.on('data', (chunk) => {
      out += chunk;
    });
    proc.on('exit', (code) => {
      rmSync(outboxDir, { recursive: true, force: true });
      const line = out.trim().split('\n').pop() ?? '';
      if (code === 0 && line.startsWith('{')) done(JSON.parse(line) as ChildResult);
      else fail(new Error(`child ${layout} exited ${code}: ${out}`));
    });
  });
}

const KiB = 1024;
const MiB = 1024 * 1024;

function row(r: ChildResult): string {
  const perHour = (bytes: number) => (bytes * 3600) / r.simulatedS / MiB;
  const name = r.layout === 'old' ? `SQLite (${OLD_COMMIT}), ${r.tickS} s ticks` : `segments, ${r.tickS} s ticks`;
  const files = Object.entries(r.filesAfterOffline)
    .map(([n, size]) => `${n === 'outbox.db' ? 'db' : n.replace(/^outbox\.db/, '')} ${(size / KiB).toFixed(0)}`)
    .join(', ');
  const steadyPerHour = r.steady.seconds > 0 ? ((r.steady.writeBytes * 3600) / r.steady.seconds / MiB).toFixed(2) : '–';
  const steady = `${(r.steady.writeBytes / KiB).toFixed(0)} KiB in ${r.steady.seconds} s: ${steadyPerHour} MiB/h`;
  return `| ${name} | ${(r.offline.writeBytes / KiB).toFixed(0)} KiB | **${perHour(r.offline.writeBytes).toFixed(2)} MiB** | ${steady} | ${(r.kept.bytes / KiB).toFixed(0)} KiB (${r.kept.messages}) | **${(r.offline.writeBytes / r.kept.bytes).toFixed(2)}×** | ${(r.delivery.writeBytes / KiB).toFixed(0)} KiB | ${files || 'none'} |`;
}

async function parent(): Promise<void> {
  const scratch = mkdtempSync(join(values.dir, 'flotilla-outbox-writes-'));
  const legacy = join(scratch, 'legacy-outbox');
  mkdirSync(legacy);
  const fs = execFileSync('findmnt', ['-n', '-o', 'FSTYPE,SOURCE', '--target', scratch], { encoding: 'utf8' })
    .trim()
    .replace(/\s+/, ' on ');
  const loadBefore = loadavg();
  try {
    extractOldOutbox(legacy);
    const tickS = Number(values['tick-s']);
    const oldTicks = values['old-tick-s'].split(',').map(Number);
    const realS = Number(values['real-s']);
    let results: ChildResult[];
    if (realS > 0) {
      // Side by side over the same real window (the old outbox's own timer ticks every 30 s).
      results = await Promise.all([runChild('old', 30, scratch, legacy), runChild('new', 30, scratch, legacy)]);
    } else {
      results = [];
      for (const t of oldTicks) results.push(await runChild('old', t, scratch, legacy));
      results.push(await runChild('new', tickS, scratch, legacy));
    }
    const loadAfter = loadavg();
    if (values.json) {
      process.stdout.write(`${JSON.stringify({ fs, loadBefore, loadAfter, results }, null, 2)}\n`);
      return;
    }
    const first = results[0]!;
    const window =
      realS > 0
        ? `${realS} s real time, side by side`
        : `${first.simulatedS} s simulated (fsync after each tick stands for the kernel's writeback)`;
    console.log(`\noutbox writes, offline: ${window}; file system ${fs} at ${scratch}`);
    console.log(
      `load average ${loadBefore.map((l) => l.toFixed(2)).join(' ')} before, ${loadAfter.map((l) => l.toFixed(2)).join(' ')} after`,
    );
    const classes = Object.entries(first.pushed.byClass)
      .map(([cls, c]) => `${c.messages} ${cls} (${(c.bytes / c.messages).toFixed(0)} B each)`)
      .join(', ');
    console.log(`pushed per layout: ${classes}; ${(first.pushed.bytes / KiB).toFixed(0)} KiB\n`);
    console.log(
      '| outbox | write_bytes offline | per hour | after the first tick | kept at the end (messages) | write amplification | writes when delivered + 1 tick | files after the window (KiB) |',
    );
    console.log('| --- | --- | --- | --- | --- | --- | --- | --- |');
    for (const r of results) console.log(row(r));
    const oldSame = results.find((r) => r.layout === 'old' && r.tickS === tickS);
    const fresh = results.find((r) => r.layout === 'new');
    if (oldSame && fresh)
      console.log(
        `\nold / new at ${tickS} s ticks: ${(oldSame.offline.writeBytes / fresh.offline.writeBytes).toFixed(1)}× fewer bytes written`,
      );
    for (const r of results)
      console.log(
        `${r.layout} ${r.tickS} s: ${r.wallS.toFixed(1)} s wall, cancelled_write_bytes ${(r.offline.cancelledWriteBytes / KiB).toFixed(0)} KiB, inodes ${Object.entries(
          r.inodes,
        )
          .map(([name, ino]) => `${name} ${ino} (table block ${Math.floor((ino - 1) / 16)})`)
          .join(', ')}`,
      );
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

if (values.child) await child();
else await parent();
