/**
 * The first admin's key on every replica (broker/store/pg/admin-key.ts): the replica that makes the
 * admin account keeps its key in the database sealed with the secrets key, and every replica writes
 * it into its own data dir, 0600, so an operator holding any replica's data dir logs in on all of
 * them; a replica whose data dir was lost writes it again; and once the admin account is deleted,
 * no replica hands out its dead key.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureAdmin } from '../../broker/auth/bootstrap.js';
import { PgAccountStore } from '../../broker/store/pg/accounts.js';
import { shareAdminKey } from '../../broker/store/pg/admin-key.js';
import { openPostgres } from '../../broker/store/pg/connect.js';
import { SecretCipher } from '../../broker/store/secret-cipher.js';
import { Cleanup } from '../support/cleanup.js';
import { http } from '../support/http.js';
import { LogCapture } from '../support/logs.js';
import type { PostgresServer } from '../support/postgres.js';
import { type HubProcess, removeDir, scratchDir, startHubProcess } from '../support/processes.js';
import { startReplicaHubs } from '../support/replica-hubs.js';

describe("the admin key on a hub's replicas", () => {
  const cleanup = new Cleanup();
  let args: string[];
  let postgres: PostgresServer;
  let replica: (dataDir?: string) => Promise<HubProcess>;

  beforeAll(async () => {
    ({ args, postgres, start: replica } = await startReplicaHubs(cleanup, { count: 0, name: 'admin', extraArgs: ['--anonymous', 'deny'] }));
  }, 60_000);
  afterAll(() => cleanup.run());

  const adminKeyOf = (hub: HubProcess) => readFileSync(join(hub.dataDir, 'admin.key'), 'utf8').trim();
  const as = (key: string) => ({ authorization: `Bearer ${key}` });
  const accounts = async (hub: HubProcess, key?: string) =>
    (await http(hub.url, 'GET', '/api/v1/serviceaccounts', undefined, key ? as(key) : {})).status;

  it("is in every replica's data dir and logs in on each, comes back with a lost data dir, and is not handed out once deleted", {
    timeout: 120_000,
  }, async () => {
    const first = await replica();
    const key = adminKeyOf(first);
    expect(key).toMatch(/^admin\./);

    const second = await replica();
    expect(adminKeyOf(second)).toBe(key);
    expect(statSync(join(second.dataDir, 'admin.key')).mode & 0o777).toBe(0o600);
    expect(await accounts(second)).toBe(401);
    expect(await accounts(second, key)).toBe(200);
    expect(second.proc.output).toContain('wrote the admin account');
    expect(second.proc.output).not.toContain(key);

    // The first replica's machine is gone with its data dir: a replica on a new one still gets the key.
    await first.proc.stop(true);
    removeDir(first.dataDir);
    const third = await replica();
    expect(adminKeyOf(third)).toBe(key);
    expect(await accounts(third, key)).toBe(200);

    // An operator replaces the bootstrap admin with an account of their own.
    const made = await http(second.url, 'POST', '/api/v1/serviceaccounts', { name: 'ops', role: 'admin' }, as(key));
    expect(made.status).toBe(200);
    const opsKey = (made.body as { key: string }).key;
    expect((await http(second.url, 'DELETE', '/api/v1/serviceaccounts/admin', undefined, as(opsKey))).status).toBe(200);
    const fourth = await replica();
    expect(existsSync(join(fourth.dataDir, 'admin.key'))).toBe(false);
    expect(fourth.proc.output).toContain('the admin key stored in the database no longer logs in');
    expect(await accounts(fourth, key)).toBe(401);
    expect(await accounts(fourth, opsKey)).toBe(200);
  });

  it('is in the data dir of every replica started at once on a new database', { timeout: 120_000 }, async () => {
    const database = await postgres.createDatabase('together');
    const together = args.map((a, i) => (args[i - 1] === '--database' ? database : a));
    const started = await Promise.all([0, 1, 2].map((i) => startHubProcess(scratchDir(`flotilla-admin-together-${i}-`), together)));
    for (const hub of started) {
      cleanup.add('replica', () => hub.proc.stop());
      cleanup.add('replica data', () => removeDir(hub.dataDir));
    }
    const keys = started.map(adminKeyOf);
    expect(new Set(keys).size).toBe(1);
    expect(await accounts(started[2]!, keys[0])).toBe(200);
  });

  it('is stored from the data dir whose key works when the database holds none, as after flotilla migrate', async () => {
    const db = await openPostgres(await postgres.createDatabase(), { logger: new LogCapture().logger });
    cleanup.add('pool', () => db.close());
    const cipher = new SecretCipher(Buffer.alloc(32, 9));
    const accounts = new PgAccountStore(db);
    const logs = new LogCapture();
    const { logger } = logs;
    // A minute on: the admin account is not one a replica starting beside this one has just made.
    const now = () => new Date(Date.now() + 60_000);
    // A single hub's data dir, its admin moved into the database with the rest: the database holds no copy of the key.
    const moved = scratchDir('flotilla-admin-moved-');
    cleanup.add('moved', () => removeDir(moved));
    const created = await ensureAdmin(accounts, moved, logger);
    expect(created).toBeDefined();

    // The trap: a replica started first on a fresh data dir has no key to write, and says so once, naming the way out.
    const fresh = scratchDir('flotilla-admin-fresh-');
    cleanup.add('fresh', () => removeDir(fresh));
    await shareAdminKey({ db, cipher, accounts, dataDir: fresh, created: undefined, logger, now });
    expect(existsSync(join(fresh, 'admin.key'))).toBe(false);
    const said = logs.matching(
      "no admin key to write to this data dir: the database holds no copy of it (as after flotilla migrate); start one replica on a data dir whose admin.key works (the migrated hub's), and every replica gets it; meanwhile any admin's key logs in",
    );
    expect(said).toHaveLength(1);
    expect(said[0]).toMatchObject({ path: join(fresh, 'admin.key'), account: 'admin', level: 40 });

    await shareAdminKey({ db, cipher, accounts, dataDir: moved, created: undefined, logger, now });
    const other = scratchDir('flotilla-admin-other-');
    cleanup.add('other', () => removeDir(other));
    await shareAdminKey({ db, cipher, accounts, dataDir: other, created: undefined, logger, now });
    expect(readFileSync(join(other, 'admin.key'), 'utf8').trim()).toBe(created!.key);

    // A copy sealed with another secrets key does not open: nothing is written from it.
    const third = scratchDir('flotilla-admin-third-');
    cleanup.add('third', () => removeDir(third));
    await shareAdminKey({ db, cipher: new SecretCipher(Buffer.alloc(32, 8)), accounts, dataDir: third, created: undefined, logger, now });
    expect(existsSync(join(third, 'admin.key'))).toBe(false);
  });
});
