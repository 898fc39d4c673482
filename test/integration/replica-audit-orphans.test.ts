/**
 * A killed replica's remote-access sessions: the sessions it relayed stay `open` in the shared audit
 * trail until the surviving replicas see it gone from the database (broker/store/pg/hub-presence.ts)
 * and end them as `hub_lost`, naming the replica; the sessions of live replicas stay open.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AUDIT_MAX_RECORDS } from '../../broker/remote/audit-store.js';
import { PgAuditStore } from '../../broker/store/pg/audit.js';
import { openPostgres } from '../../broker/store/pg/connect.js';
import type { PgDatabase } from '../../broker/store/pg/database.js';
import { presentHubs } from '../../broker/store/pg/hub-presence.js';
import type { AuditRecord, List } from '../../shared/index.js';
import { Cleanup } from '../support/cleanup.js';
import { http } from '../support/http.js';
import { LogCapture } from '../support/logs.js';
import type { HubProcess } from '../support/processes.js';
import { startReplicaHubs } from '../support/replica-hubs.js';
import { waitFor } from '../support/wait.js';

/** A field of the first log line of a hub process saying `msg`. */
function logged(hub: HubProcess, msg: string, field: string): string {
  const line = hub.proc.output.split('\n').find((l) => l.includes(`"msg":"${msg}"`));
  const value = line && (JSON.parse(line) as Record<string, unknown>)[field];
  if (typeof value !== 'string') throw new Error(`the hub did not log ${msg} with ${field} (output: ${hub.proc.output.slice(-500)})`);
  return value;
}

/** The name a hub process holds its place in the database under, from its log. */
const presenceName = (hub: HubProcess) => logged(hub, "holding this hub's place in the database", 'hub');

describe("a killed replica's remote-access sessions", () => {
  const cleanup = new Cleanup();
  let db: PgDatabase;
  let replicas: HubProcess[] = [];

  beforeAll(async () => {
    let database: string;
    ({ database, replicas } = await startReplicaHubs(cleanup, { count: 2, name: 'orphans' }));
    db = await openPostgres(database, { logger: new LogCapture().logger });
    cleanup.add('pool', () => db.close());
  }, 90_000);
  afterAll(() => cleanup.run());

  it('names each replica once: its ready line, its place in the database, its leader lease and its broker say the same', async () => {
    const names = replicas.map((hub) => logged(hub, 'hub ready', 'replica'));
    expect(new Set(names).size).toBe(2);
    expect(replicas.map(presenceName)).toEqual(names);
    for (const name of names) expect(name).toMatch(/^[^:]+-\d+-[0-9a-f]{6}$/);
    // The leader names itself by its broker's id (broker/hub/replica.ts): the same name; pg_stat_activity shows its lease's session under it.
    const leader = await waitFor('a leader', () => replicas.find((hub) => hub.proc.output.includes('"msg":"leading the dispatcher"')));
    const leaderName = logged(leader, 'leading the dispatcher', 'replica');
    expect(names).toContain(leaderName);
    const sessions = await db.query<{ name: string }>(
      "SELECT application_name AS name FROM pg_stat_activity WHERE application_name LIKE 'flotilla-%' ORDER BY 1",
    );
    expect(sessions.map((s) => s.name)).toEqual(
      expect.arrayContaining([`flotilla-leader ${leaderName}`, ...names.map((n) => `flotilla-hub ${n}`)]),
    );
  });

  const auditOn = async (hub: HubProcess) => ((await http(hub.url, 'GET', '/api/v1/audit?limit=10')).body as List<AuditRecord>).items;

  it("ends them as hub_lost once the replica is gone, and leaves the live replica's open", { timeout: 90_000 }, async () => {
    const [killed, survivor] = [presenceName(replicas[0]!), presenceName(replicas[1]!)];
    expect(killed).not.toBe(survivor);
    expect(await presentHubs(db)).toEqual(new Set([killed, survivor]));
    // What each replica writes as it opens a session: the row names it.
    const start = { actor: 'ops', device: 'dev-1', kind: 'shell' as const, what: 'shell' };
    const onKilled = await new PgAuditStore(db, undefined, AUDIT_MAX_RECORDS, killed).opened(start);
    const onSurvivor = await new PgAuditStore(db, undefined, AUDIT_MAX_RECORDS, survivor).opened({ ...start, device: 'dev-2' });
    // Both live: a few sweeps later, nothing has been ended.
    await new Promise((resolve) => setTimeout(resolve, 6_000));
    expect((await auditOn(replicas[1]!)).map((r) => [r.id, r.outcome])).toEqual([
      [onSurvivor, 'open'],
      [onKilled, 'open'],
    ]);

    await replicas[0]!.proc.stop(true);
    const killedAt = Date.now();
    await waitFor('the killed replica gone from the database', async () => !(await presentHubs(db)).has(killed), { timeoutMs: 10_000 });
    const ended = await waitFor(
      "the killed replica's session ended",
      async () => (await auditOn(replicas[1]!)).find((r) => r.id === onKilled && r.outcome !== 'open'),
      { timeoutMs: 40_000, intervalMs: 250 },
    );
    const tookMs = Date.now() - killedAt;
    expect(ended).toMatchObject({ outcome: 'hub_lost', reason: `replica ${killed} stopped while the session ran` });
    expect(ended.endedAt).toBeDefined();
    // Not before it had been missing for the sweep's 15 s; then within a few sweeps (5 s apart), with room for a loaded machine.
    expect(tookMs).toBeGreaterThanOrEqual(15_000);
    expect(tookMs).toBeLessThan(32_000);
    expect((await auditOn(replicas[1]!)).find((r) => r.id === onSurvivor)?.outcome).toBe('open');
    expect(replicas[1]!.proc.output).toContain('sessions left open by a replica that is gone were ended');
  });
});
