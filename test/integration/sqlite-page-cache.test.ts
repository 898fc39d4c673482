/**
 * The hub's control database keeps a small page cache (CONTROL_CACHE_KIB):
 * a pass over every device row must not leave the whole table in the hub's
 * memory, as better-sqlite3's 16 MiB default did (1.6 KiB of RSS per device
 * with 10,000 devices). Measured as the process's RSS around a scan that
 * makes no JavaScript objects, beside a connection with the default cache,
 * which shows the scan would be seen.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CONTROL_CACHE_KIB, openDatabase } from '../../broker/store/sqlite/db.js';
import { REPO_ROOT } from '../support/processes.js';
import { scratchDir } from '../support/scratch.js';

const DEVICES = 10_000;
/** About what a device row holds: a state report and a sealed desired document. */
const ROW_BYTES = 3000;

function fleetFile(): string {
  const file = join(scratchDir('flotilla-page-cache-'), 'hub.db');
  const db = openDatabase(file);
  const insert = db.prepare("INSERT INTO devices (id, state, created_at) VALUES (?, ?, '2026-01-01T00:00:00Z')");
  db.transaction(() => {
    for (let i = 0; i < DEVICES; i++) insert.run(`dev-${i}`, `${i}`.padEnd(ROW_BYTES, 'x'));
  })();
  db.close();
  return file;
}

/**
 * RSS growth, MiB, of a fresh process (nothing freed earlier for SQLite to
 * reuse) while a connection reads every device row once: an aggregate, so no
 * row reaches JavaScript. `how` opens the hub's way or better-sqlite3's.
 */
function scanGrowthMiB(file: string, how: 'hub' | 'stock'): number {
  const open =
    how === 'hub'
      ? `(await import(${JSON.stringify(join(REPO_ROOT, 'broker/store/sqlite/db.ts'))})).openDatabase(file)`
      : `new (await import('better-sqlite3')).default(file)`;
  const script = `
    const file = ${JSON.stringify(file)};
    const db = ${open};
    // Prepared and run once over one row first: the growth measured is the scan's pages, not
    // SQLite's code and the statement being paged in for the first time.
    const scan = db.prepare('SELECT sum(length(state)) AS bytes FROM devices WHERE id >= ?');
    scan.get('dev-9999');
    const before = process.memoryUsage.rss();
    const { bytes } = scan.get('');
    const after = process.memoryUsage.rss();
    console.log(JSON.stringify({ bytes, growth: after - before }));`;
  const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: REPO_ROOT, encoding: 'utf8' });
  expect(child.status, child.stderr).toBe(0);
  const { bytes, growth } = JSON.parse(child.stdout) as { bytes: number; growth: number };
  expect(bytes).toBe(DEVICES * ROW_BYTES);
  return growth / 1024 / 1024;
}

describe("the hub's control database page cache", () => {
  it(`stays near ${CONTROL_CACHE_KIB} KiB through a pass over ${DEVICES} device rows`, () => {
    const file = fleetFile();
    // RSS also moves with what the process's other threads allocate or free meanwhile (the
    // TypeScript loader, the collector), by a few MiB either way on a busy machine. So each side is
    // measured in three fresh processes: the same scan with better-sqlite3's default cache keeps
    // most of the ~30 MiB table in at least one of them, and a cache that kept the table would keep
    // it in every one.
    const stock = Math.max(...[1, 2, 3].map(() => scanGrowthMiB(file, 'stock')));
    expect(stock).toBeGreaterThan(12);
    const hub = Math.min(...[1, 2, 3].map(() => scanGrowthMiB(file, 'hub')));
    expect(hub).toBeLessThan(CONTROL_CACHE_KIB / 1024 + 3);
  });
});
