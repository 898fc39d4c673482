/** The hub's audit trail over a real SQLite file: records, their endings, queries, the bound. */
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { auditMethods } from '../../../broker/remote/audit-methods.js';
import type { AuditStore } from '../../../broker/remote/audit-store.js';
import { SqliteAuditStore } from '../../../broker/store/sqlite/audit.js';
import { type Db, openDatabase } from '../../../broker/store/sqlite/db.js';
import { scratchDir } from '../../support/scratch.js';

const opened: Db[] = [];
afterEach(async () => {
  for (const db of opened.splice(0)) db.close();
});

function store(clock: { ms: number }, maxRecords?: number): AuditStore {
  const db = openDatabase(join(scratchDir('flotilla-audit-'), 'hub.db'));
  opened.push(db);
  return new SqliteAuditStore(db, () => new Date(clock.ms), maxRecords);
}

const exec = { actor: 'ci', device: 'gw-1', kind: 'exec' as const, what: 'exec in web: ls' };

describe('the audit store', () => {
  it('records a session from open to its end with bytes and exit code, and a refusal at once', async () => {
    const clock = { ms: Date.parse('2026-01-01T00:00:00Z') };
    const audit = store(clock);
    const id = await audit.opened(exec);
    expect(await audit.list({ limit: 10 })).toEqual([
      { id, ...exec, outcome: 'open', startedAt: '2026-01-01T00:00:00.000Z', bytesUp: 0, bytesDown: 0 },
    ]);
    clock.ms += 5000;
    await audit.ended(id, { outcome: 'exited', bytesUp: 120, bytesDown: 7, exitCode: 3 });
    // An ending reported twice (the socket closed after EXIT) keeps the first.
    await audit.ended(id, { outcome: 'closed', bytesUp: 999, bytesDown: 999 });
    const denied = await audit.denied({ actor: 'wall', device: 'gw-2', kind: 'shell', what: 'host shell' }, 'needs role admin');
    const [newest, first] = await audit.list({ limit: 10 });
    expect(newest).toMatchObject({ id: denied, outcome: 'denied', reason: 'needs role admin', endedAt: '2026-01-01T00:00:05.000Z' });
    expect(first).toEqual({
      id,
      ...exec,
      outcome: 'exited',
      startedAt: '2026-01-01T00:00:00.000Z',
      endedAt: '2026-01-01T00:00:05.000Z',
      bytesUp: 120,
      bytesDown: 7,
      exitCode: 3,
    });
  });

  it('filters by device and start time, newest first, at most limit', async () => {
    const clock = { ms: Date.parse('2026-01-01T00:00:00Z') };
    const audit = store(clock);
    for (const device of ['a', 'b', 'a', 'a']) {
      await audit.opened({ ...exec, device });
      clock.ms += 60_000;
    }
    expect((await audit.list({ device: 'a', limit: 10 })).map((r) => r.startedAt)).toEqual([
      '2026-01-01T00:03:00.000Z',
      '2026-01-01T00:02:00.000Z',
      '2026-01-01T00:00:00.000Z',
    ]);
    expect(await audit.list({ device: 'a', limit: 1 })).toHaveLength(1);
    const api = auditMethods({ audit, now: () => clock.ms });
    expect((await api['audit.list']({ since: '3m' })).items.map((r) => r.device)).toEqual(['a', 'a', 'b']);
    expect((await api['audit.list']({ since: '2026-01-01T00:03:00Z' })).items).toHaveLength(1);
  });

  it('closes sessions a stopped hub left open, and keeps only the newest records', async () => {
    const clock = { ms: Date.parse('2026-01-01T00:00:00Z') };
    const audit = store(clock, 10);
    const open = await audit.opened(exec);
    expect(await audit.closeOrphans('the hub stopped while it ran')).toBe(1);
    expect((await audit.list({ limit: 1 }))[0]).toMatchObject({ id: open, outcome: 'hub_lost', reason: 'the hub stopped while it ran' });
    for (let i = 0; i < 199; i++) await audit.denied(exec, `try ${i}`);
    const kept = await audit.list({ limit: 1000 });
    // Pruned every 100 inserts: the newest 10 then, and those added since.
    expect(kept.length).toBeLessThan(110);
    expect(kept[0]?.reason).toBe('try 198');
    expect(kept.some((r) => r.id === open)).toBe(false);
  });
});
