/**
 * Hubs that may not share a PostgreSQL database (broker/store/pg/hub-presence.ts): a hub without
 * --redis holds the database alone, so a second one, or a replica with --redis, is refused at start
 * with one error naming the hub in the way and the database, and a hub without --redis is refused
 * next to running replicas. A holder killed with SIGKILL blocks nobody: the next hub starts at once.
 */
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADVISORY_LOCKS, LOCK_CLASS } from '../../broker/store/pg/advisory-locks.js';
import { openPostgres } from '../../broker/store/pg/connect.js';
import type { PgDatabase } from '../../broker/store/pg/database.js';
import { presentHubs } from '../../broker/store/pg/hub-presence.js';
import { Cleanup } from '../support/cleanup.js';
import { LogCapture } from '../support/logs.js';
import { type PostgresServer, startPostgres } from '../support/postgres.js';
import { type HubProcess, hubServerArgs, removeDir, runCli, scratchDir, startHubProcess } from '../support/processes.js';
import { type RedisServer, startRedis } from '../support/redis.js';
import { waitFor } from '../support/wait.js';

/** The name a hub process holds its place in the database under, from its log. */
function presenceName(hub: HubProcess): string {
  const line = hub.proc.output.split('\n').find((l) => l.includes("holding this hub's place in the database"));
  const name = line && (JSON.parse(line) as { hub?: string }).hub;
  if (!name) throw new Error(`the hub did not log its place in the database (output: ${hub.proc.output.slice(-500)})`);
  return name;
}

describe('hubs on one PostgreSQL database', () => {
  const cleanup = new Cleanup();
  let redis: RedisServer;
  let postgres: PostgresServer;
  let database: string;
  let keyFile: string;
  let db: PgDatabase;

  beforeAll(async () => {
    redis = await startRedis();
    cleanup.add('redis', () => redis.close());
    postgres = await startPostgres();
    cleanup.add('postgres', () => postgres.close());
    database = await postgres.createDatabase('shared');
    const keys = scratchDir('flotilla-alone-keys-');
    cleanup.add('keys', () => removeDir(keys));
    keyFile = join(keys, 'secrets.key');
    db = await openPostgres(database, { logger: new LogCapture().logger });
    cleanup.add('pool', () => db.close());
  }, 60_000);
  afterAll(() => cleanup.run());

  const alone = () => ['--database', database, '--secrets-key-file', keyFile];
  const replica = () => ['--redis', redis.url, ...alone()];
  const where = () => `database "shared" on PostgreSQL at 127.0.0.1:${postgres.port}`;

  async function start(args: string[]): Promise<HubProcess> {
    const hub = await startHubProcess(scratchDir('flotilla-alone-hub-'), args);
    cleanup.add('hub', () => hub.proc.stop());
    cleanup.add('hub data', () => removeDir(hub.dataDir));
    return hub;
  }

  /** A `flotilla server` that must stop at start: its exit code and what it said. */
  async function refused(args: string[]): Promise<{ code: number; said: string }> {
    const dataDir = scratchDir('flotilla-alone-refused-');
    cleanup.add('refused data', () => removeDir(dataDir));
    const { args: server } = await hubServerArgs(dataDir);
    const result = await runCli([...server, ...args], { timeoutMs: 20_000 });
    return { code: result.code, said: result.stdout + result.stderr };
  }

  it('refuses a second hub without --redis and a replica next to one, and lets the next start once it is killed', {
    timeout: 120_000,
  }, async () => {
    const first = await start(alone());
    const firstName = presenceName(first);

    const second = await refused(alone());
    expect(second.code).not.toBe(0);
    expect(second.said).toContain(`another hub without --redis uses ${where()}: ${firstName} (since `);
    expect(second.said).toContain('stop that hub, or run every hub as a replica with the same --redis');
    const asReplica = await refused(replica());
    expect(asReplica.code).not.toBe(0);
    expect(asReplica.said).toContain(`a hub without --redis uses ${where()}: ${firstName} (since `);
    expect(asReplica.said).toContain('start it again as a replica with --redis');
    // Neither refusal disturbed the hub that holds the database.
    expect((await fetch(`${first.url}/healthz`)).ok).toBe(true);
    expect(await presentHubs(db)).toEqual(new Set([firstName]));

    await first.proc.stop(true);
    const killedAt = Date.now();
    const next = await start(alone());
    const tookMs = Date.now() - killedAt;
    expect(await presentHubs(db)).toEqual(new Set([presenceName(next)]));
    // The kill freed the database at once: the next hub's whole start fits well inside the wait a stale holder would cost.
    expect(tookMs).toBeLessThan(15_000);
    await next.proc.stop();
  });

  it('refuses a hub without --redis next to running replicas, and starts it once they are gone', { timeout: 120_000 }, async () => {
    await waitFor('no hub on the database', async () => (await presentHubs(db)).size === 0, { timeoutMs: 10_000 });
    const replicas = [await start(replica()), await start(replica())];
    const names = replicas.map(presenceName);

    const lone = await refused(alone());
    expect(lone.code).not.toBe(0);
    expect(lone.said).toContain(`hub replicas with --redis use ${where()}: `);
    for (const name of names) expect(lone.said).toContain(name);
    expect(lone.said).toContain('start it with the --redis URL they use');
    for (const r of replicas) expect((await fetch(`${r.url}/healthz`)).ok).toBe(true);

    await replicas[0]!.proc.stop(true);
    await replicas[1]!.proc.stop(true);
    const after = await start(alone());
    expect(await presentHubs(db)).toEqual(new Set([presenceName(after)]));
    await after.proc.stop();
  });

  it('holds the database again after PostgreSQL restarts, so a second hub is still refused', { timeout: 120_000 }, async () => {
    await waitFor('no hub on the database', async () => (await presentHubs(db)).size === 0, { timeoutMs: 10_000 });
    const hub = await start(alone());
    const name = presenceName(hub);

    await postgres.restart();
    await waitFor('the hub back in its place', async () => (await presentHubs(db)).has(name), { timeoutMs: 20_000 });
    expect(hub.proc.output).toContain("lost the session that holds this hub's place in the database; opening it again");
    expect(hub.proc.output).toContain("holding this hub's place in the database again");
    const second = await refused(alone());
    expect(second.code).not.toBe(0);
    expect(second.said).toContain(`another hub without --redis uses ${where()}: ${name} (since `);
    await hub.proc.stop();
  });

  it('says so once, and keeps trying, when another hub took the database while its session was away', { timeout: 120_000 }, async () => {
    await waitFor('no hub on the database', async () => (await presentHubs(db)).size === 0, { timeoutMs: 10_000 });
    const hub = await start(alone());
    const name = presenceName(hub);
    // Its session ends, and a replica's takes the lock before the hub is back (it tries every second).
    const intruder = new pg.Client({ connectionString: database, application_name: 'flotilla-hub intruder:1:000000' });
    await intruder.connect();
    cleanup.add('intruder', () => intruder.end());
    await postgres.adminQuery('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [
      `flotilla-hub ${name}`,
    ]);
    // pg_terminate_backend only signals: the session holds its lock until its backend has exited, which
    // takes a while on a loaded machine. The hub waits a second before it tries again.
    await waitFor(
      'the hub’s session gone',
      async () =>
        (await intruder.query('SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1', [`flotilla-hub ${name}`]))
          .rows[0].n === 0,
      { intervalMs: 10, timeoutMs: 5_000 },
    );
    const [got] = (await intruder.query('SELECT pg_try_advisory_lock_shared($1, $2) AS got', [LOCK_CLASS, ADVISORY_LOCKS.hubPresence]))
      .rows;
    expect(got.got).toBe(true);

    await waitFor('the hub told', () => hub.proc.output.includes("cannot take this hub's place in the database again"));
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    const told = hub.proc.output.split('\n').filter((l) => l.includes("cannot take this hub's place in the database again"));
    expect(told).toHaveLength(1);
    expect(told[0]).toContain('hub replicas with --redis use');
    expect(told[0]).toContain('intruder:1:000000');

    await intruder.query('SELECT pg_advisory_unlock_all()');
    await waitFor('the hub back in its place', async () => (await presentHubs(db)).has(name), { timeoutMs: 10_000 });
    expect(hub.proc.output).toContain("holding this hub's place in the database again");
  });
});
