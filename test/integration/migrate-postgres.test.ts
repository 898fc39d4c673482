/**
 * `flotilla migrate` through the real CLI, from a real single hub's data dir into a private
 * PostgreSQL server: the hub is filled through its API (apps with revisions and a rollback, a
 * rollout, simulated devices with labels, desired documents and events, secrets, tokens, service
 * accounts, a revoked device, audit records, agent targets with a deleted one, jobs with executions
 * and a deleted job), stopped and migrated; a hub started with
 * `--database` on a data dir of its own then shows the same fleet over its API, serves the old
 * key, lets the old keys in, and resolves the old secrets into documents the devices, pinned to
 * the old key, accept. Every refusal leaves the target as it was.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StoredAgentRevision, StoredAgentTarget } from '../../broker/store/agent-targets.js';
import { type JobStore, JobUidUsedError, type StoredExecution, type StoredJob } from '../../broker/store/jobs.js';
import { COPIED_TABLES, TELEMETRY_TABLES } from '../../broker/store/migrate/tables.js';
import { PgAgentTargetStore } from '../../broker/store/pg/agent-targets.js';
import { PgAuditStore } from '../../broker/store/pg/audit.js';
import { openPostgres } from '../../broker/store/pg/connect.js';
import { PgDatabase } from '../../broker/store/pg/database.js';
import { PgJobStore } from '../../broker/store/pg/jobs.js';
import { parsePostgresUrl } from '../../broker/store/pg/url.js';
import { SqliteAgentTargetStore } from '../../broker/store/sqlite/agent-targets.js';
import { SqliteAuditStore } from '../../broker/store/sqlite/audit.js';
import { openDatabase } from '../../broker/store/sqlite/db.js';
import { SqliteJobStore } from '../../broker/store/sqlite/jobs.js';
import { MIGRATIONS } from '../../broker/store/sqlite/migrations.js';
import { TELEMETRY_MIGRATIONS } from '../../broker/telemetry/migrations.js';
import { PgTelemetryReads } from '../../broker/telemetry/pg/reads.js';
import { type DesiredState, type DeviceView, type List, Topics } from '../../shared/index.js';
import { release } from '../support/agent-target-store-suite.js';
import { adminKey, bearer, createAccount, createToken, registerDevice } from '../support/auth.js';
import { Cleanup } from '../support/cleanup.js';
import { http } from '../support/http.js';
import { startTestHub } from '../support/hub.js';
import { storedJob } from '../support/job-store-suite.js';
import { closeClient, connectClient, Inbox } from '../support/mqtt-client.js';
import { type PostgresServer, startPostgres } from '../support/postgres.js';
import { type RunResult, runCli, startHubProcess, stopAll } from '../support/processes.js';
import { scratchDir } from '../support/scratch.js';
import { type Fleet, startFleet } from '../support/sim/fleet.js';
import { waitFor } from '../support/wait.js';

const topics = new Topics('flotilla/v1');
const SECRET_VALUE = `token-${randomBytes(8).toString('hex')}`;
const DEVICES = 4;
/** The uid of a job deleted before the move: still used after it. */
const DELETED_JOB_UID = 'old-job.5eed0001';

const webApp = (version: string, extra: Record<string, unknown> = {}) => ({
  name: 'web',
  scheduling: { selectors: { zone: 'a' } },
  spec: {
    containers: [{ name: 'server', image: `registry.local/migrate-web:${version}`, env: [{ name: 'TOKEN', fromSecret: 'api-token' }] }],
    ...extra,
  },
});

/** What the hub's API shows of its control data, read the same way before and after the move. */
async function apiView(url: string, key: string) {
  const get = async (path: string) => {
    const res = await http(url, 'GET', path, undefined, bearer(key));
    expect(res.status, `GET ${path}`).toBe(200);
    return res.body;
  };
  const devices = ((await get('/api/v1/devices')) as List<DeviceView>).items.map((d) => ({
    id: d.id,
    labels: d.labels,
    revokedAt: d.revokedAt,
    apps: d.apps.map((a) => ({ name: a.name, revision: a.revision, phase: a.phase })),
  }));
  return {
    apps: await get('/api/v1/apps/web'),
    history: await get('/api/v1/apps/web/revisions'),
    spec1: await get('/api/v1/apps/web/spec?revision=1'),
    rollout: await get('/api/v1/apps/web/rollout'),
    devices,
    secrets: await get('/api/v1/secrets'),
    tokens: await get('/api/v1/tokens'),
    accounts: await get('/api/v1/serviceaccounts'),
    audit: await get('/api/v1/audit'),
    hubKey: ((await http(url, 'GET', '/api/v1/hub/key')).body as { hubKey: string }).hubKey,
  };
}

/** Two jobs with executions in several states, and a deleted one, through the store as a hub writes them. */
async function writeJobs(store: SqliteJobStore): Promise<void> {
  const now = Date.now();
  const at = (seconds: number) => new Date(now + seconds * 1000).toISOString();
  const times = { createdAt: at(0), updatedAt: at(0), deadline: at(30 * 86_400) };
  await store.create(storedJob('old-job', { ...times, uid: DELETED_JOB_UID }), ['none-1']);
  await store.delete('old-job');
  const cert = storedJob('rotate-cert', { ...times, uid: 'rotate-cert.5eed0002' });
  await store.create(cert, ['none-1', 'none-2', 'none-3', 'none-4']);
  await store.admit('rotate-cert', ['none-1', 'none-2', 'none-3'], at(1));
  const report = { name: cert.name, execution: cert.uid };
  await store.recordReports('none-1', [{ ...report, state: 'running', attempt: 2, startedAt: at(5), output: ['step 1'] }], at(6));
  await store.recordReports(
    'none-2',
    [{ ...report, state: 'failed', attempt: 1, exitCode: 3, container: 'main', message: 'exit 3' }],
    at(6),
  );
  await store.recordReports(
    'none-3',
    [{ ...report, state: 'succeeded', attempt: 1, startedAt: at(2), finishedAt: at(4), exitCode: 0 }],
    at(6),
  );
  const stopped = storedJob('canceled', { ...times, uid: 'canceled.5eed0003' });
  await store.create(stopped, ['none-1', 'none-2']);
  await store.admit('canceled', ['none-1'], at(1));
  await store.stop('canceled', 'canceled', 'canceled by admin', at(7));
}

async function readJobs(store: JobStore): Promise<{ jobs: StoredJob[]; executions: StoredExecution[][] }> {
  const jobs = await store.list();
  return { jobs, executions: await Promise.all(jobs.map((job) => store.executions(job.name))) };
}

const migrate = (args: string[], env: NodeJS.ProcessEnv = {}) => runCli(['migrate', ...args], { env, timeoutMs: 60_000 });

describe('flotilla migrate, single hub to PostgreSQL', () => {
  const cleanup = new Cleanup();
  let postgres: PostgresServer;
  let dataDir: string;
  let before: Awaited<ReturnType<typeof apiView>>;
  let operatorKey: string;
  let whileRunning: RunResult;
  let auditHigh: number;
  let telemetryRows: Record<string, number>;
  let eventsBefore: unknown;
  let eventsHigh: number;
  let agentTargetsBefore: { targets: StoredAgentTarget[]; deleted: StoredAgentRevision | undefined };
  let jobsBefore: { jobs: StoredJob[]; executions: StoredExecution[][] };

  /** Rows in each control table of a database, and whether it has the tables at all. */
  async function rowsIn(url: string): Promise<Record<string, number> | 'no tables'> {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      const counts: Record<string, number> = {};
      for (const table of COPIED_TABLES) {
        const { rows } = await client.query<{ found: boolean }>('SELECT to_regclass($1) IS NOT NULL AS found', [table.name]);
        if (rows[0]?.found) counts[table.name] = Number((await client.query(`SELECT count(*) AS n FROM ${table.name}`)).rows[0].n);
      }
      return Object.keys(counts).length === 0 ? 'no tables' : counts;
    } finally {
      await client.end();
    }
  }

  beforeAll(async () => {
    postgres = await startPostgres();
    cleanup.add('postgres', () => postgres.close());

    const hub = await startTestHub();
    cleanup.add('single hub', () => hub.close());
    dataDir = hub.dataDir;
    const admin = adminKey(hub);
    const api = async (method: string, path: string, body?: unknown) => {
      const res = await http(hub.httpUrl, method, path, body, bearer(admin));
      expect(res.status, `${method} ${path}: ${JSON.stringify(res.body)}`).toBe(200);
      return res.body;
    };
    const hubKey = ((await http(hub.httpUrl, 'GET', '/api/v1/hub/key')).body as { hubKey: string }).hubKey;

    await api('PUT', '/api/v1/secrets/api-token', { value: SECRET_VALUE });
    await api('PUT', '/api/v1/secrets/spare', { valueBase64: randomBytes(40).toString('base64') });
    const fleet: Fleet = await startFleet({
      hubUrl: hub.mqttUrl,
      count: DEVICES,
      idPrefix: 'mig',
      labels: () => ({ zone: 'a' }),
      resyncIntervalMs: 500,
      agent: { stateIntervalMs: 200, hubKey },
    });
    cleanup.add('fleet', () => fleet.close());
    const runningAt = async (revision: number) => {
      const list = ((await api('GET', '/api/v1/devices')) as List<DeviceView>).items;
      return list.filter((d) => d.apps.some((a) => a.name === 'web' && a.revision === revision && a.phase === 'running')).length;
    };
    await api('POST', '/api/v1/apps', webApp('1.0'));
    await waitFor('revision 1 running everywhere', async () => (await runningAt(1)) === DEVICES, { timeoutMs: 30_000 });
    await api('POST', '/api/v1/apps', webApp('2.0'));
    await waitFor('revision 2 running everywhere', async () => (await runningAt(2)) === DEVICES, { timeoutMs: 30_000 });
    await api('POST', '/api/v1/apps/web/rollback', { toRevision: 1 });
    await waitFor('the rollback (revision 3) running everywhere', async () => (await runningAt(3)) === DEVICES, { timeoutMs: 30_000 });
    // From a folder in git: the revision records its source and the app its prune scope, columns the copy must carry too.
    await api('POST', '/api/v1/apply', {
      specs: [webApp('3.0', { rollout: { batchSize: 2 }, update: { minReadySeconds: 0 } })],
      scope: 'fleet',
      source: 'git:5e1f',
    });
    await waitFor('revision 4 rolled out', async () => (await runningAt(4)) === DEVICES, { timeoutMs: 30_000 });
    await api('PATCH', '/api/v1/devices/mig-0/labels', { set: { tier: 'gold' } });

    operatorKey = await createAccount(hub, 'ci', 'operator');
    await createAccount(hub, 'dash', 'viewer');
    await createToken(hub, { labels: { zone: 'b' }, maxUses: 3 });
    const revoked = await createToken(hub);
    await api('DELETE', `/api/v1/tokens/${revoked.id}`);
    await registerDevice(hub, 'reg-1', { zone: 'c' });
    await registerDevice(hub, 'reg-2');
    await api('POST', '/api/v1/devices/reg-2/revoke');

    await fleet.close();
    await waitFor(
      'the simulated devices offline',
      async () => ((await api('GET', '/api/v1/devices')) as List<DeviceView>).items.every((d) => !d.online),
      { timeoutMs: 15_000 },
    );
    whileRunning = await migrate(['--from', dataDir, '--to', await postgres.createDatabase('while_running')]);
    await hub.close();

    // Audit records as the hub's store writes them (remote sessions need a device that runs them);
    // the oldest is pruned afterwards, so the highest id ever given out is above the rows' count.
    const db = openDatabase(join(dataDir, 'hub.db'));
    const audit = new SqliteAuditStore(db);
    const first = await audit.denied({ actor: 'dash', device: 'mig-1', kind: 'exec', what: 'ls' }, 'viewer may not exec');
    await audit.failed({ actor: 'admin', device: 'mig-2', kind: 'shell', what: 'sh' }, 'device offline');
    const open = await audit.opened({ actor: 'ci', device: 'mig-3', kind: 'exec', what: 'uptime' });
    await audit.ended(open, { outcome: 'exited', bytesUp: 10, bytesDown: 2048, exitCode: 0 });
    auditHigh = await audit.failed({ actor: 'admin', device: 'mig-0', kind: 'exec', what: 'date' }, 'device offline');
    db.prepare('DELETE FROM audit WHERE id = ?').run(first);
    // Agent targets as the hub's store writes them, selecting no device; the highest revision (3)
    // is the deleted target's, which the numbering on PostgreSQL must still go past.
    const targets = new SqliteAgentTargetStore(db);
    await targets.put({ name: 'zone-nowhere', scheduling: { selectors: { zone: 'nowhere' } }, release: release('0.3.0') });
    await targets.put({ name: 'device-none', scheduling: { devices: ['none'] }, release: release('0.3.0'), rollout: { canary: 1 } });
    await targets.put({ name: 'device-none', scheduling: { devices: ['none'] }, release: release('0.4.0'), rollout: { canary: 1 } });
    await targets.delete('device-none');
    agentTargetsBefore = { targets: await targets.list(), deleted: await targets.revision(3) };
    // Jobs as the hub's store writes them, on devices the hub does not have (so nothing plans them):
    // executions in each kind of state, a canceled job, and a deleted one whose uid must stay used.
    await writeJobs(new SqliteJobStore(db));
    db.close();

    // The view to compare with, from the same data dir as the hub left it.
    const again = await startTestHub({ dataDir });
    before = await apiView(again.httpUrl, admin);
    eventsBefore = (await http(again.httpUrl, 'GET', '/api/v1/events?tail=1000', undefined, bearer(admin))).body;
    await again.close();
    const jobsDb = openDatabase(join(dataDir, 'hub.db'));
    jobsBefore = await readJobs(new SqliteJobStore(jobsDb));
    jobsDb.close();
    const telemetry = openDatabase(join(dataDir, 'telemetry.db'), TELEMETRY_MIGRATIONS);
    telemetryRows = Object.fromEntries(
      TELEMETRY_TABLES.map((table) => [
        table.name,
        (telemetry.prepare(`SELECT count(*) AS n FROM ${table.name}`).get() as { n: number }).n,
      ]),
    );
    eventsHigh = (telemetry.prepare('SELECT max(id) AS n FROM events').get() as { n: number }).n;
    telemetry.close();
  }, 180_000);
  afterAll(async () => {
    await stopAll();
    await cleanup.run();
  });

  it('refuses a hub that is running, before touching the database', async () => {
    expect(whileRunning.code).toBe(2);
    expect(whileRunning.stderr).toMatch(/hub\.db is in use by another process: stop the hub first/);
    expect(await rowsIn(postgres.urlFor('while_running'))).toBe('no tables');
  });

  it('counts in a dry run and writes nothing', async () => {
    const url = await postgres.createDatabase('dry');
    const result = await migrate(['--from', dataDir, '--to', url, '--dry-run']);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^dry run: nothing was copied$/m);
    expect(result.stdout).toMatch(/^devices\s+6\s+-$/m);
    expect(result.stdout).toMatch(/^events\s+\d+\s+-$/m);
    expect(result.stdout).toMatch(/^app_revisions\s+4\s+-$/m);
    expect(result.stdout).toMatch(/^agent_target_revisions\s+3\s+-$/m);
    expect(result.stdout).toMatch(/holds no hub's data: migrate can copy into it/);
    const json = await runCli(['-o', 'json', 'migrate', '--from', dataDir, '--to', url, '--dry-run']);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({
      dryRun: true,
      schemaVersion: MIGRATIONS.length,
      targetEmpty: true,
      tables: expect.arrayContaining([{ table: 'devices', sqlite: 6 }]),
    });
    expect(await rowsIn(url)).toBe('no tables');
  });

  it('moves everything a hub on PostgreSQL then serves as the single hub did, and refuses a second move', {
    timeout: 120_000,
  }, async () => {
    const url = await postgres.createDatabase('moved');
    const result = await migrate(['--from', dataDir, '--to', url]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    for (const [table, rows] of Object.entries({ apps: 1, app_revisions: 4, devices: 6, secrets: 2, rollouts: 1, service_accounts: 3 })) {
      expect(result.stdout).toMatch(new RegExp(`^${table}\\s+${rows}\\s+${rows}$`, 'm'));
    }
    expect(result.stdout).toMatch(/^device_credentials\s+2\s+2$/m);
    expect(result.stdout).toMatch(/^audit\s+3\s+3$/m);
    expect(result.stdout).toMatch(/^hub_keys\s+0\s+1$/m);
    expect(result.stdout).toMatch(/^agent_targets\s+1\s+1$/m);
    expect(result.stdout).toMatch(/^agent_target_revisions\s+3\s+3$/m);
    expect(result.stdout).toMatch(/^agent_revision_counter\s+1\s+1$/m);
    expect(result.stdout).toMatch(/^jobs\s+2\s+2$/m);
    expect(result.stdout).toMatch(/^job_executions\s+6\s+6$/m);
    expect(result.stdout).toMatch(/^job_uids\s+3\s+3$/m);
    expect(result.stdout).toMatch(/^sample: \d+ rows equal$/m);
    // Jobs read back as the single hub stored them, before any replica could plan or expire them,
    // and the deleted job's uid stays used.
    const jobsDb = new PgDatabase(parsePostgresUrl(url), pino({ level: 'silent' }));
    cleanup.add('jobs pool', () => jobsDb.close());
    const jobs = new PgJobStore(jobsDb);
    expect(await readJobs(jobs)).toEqual(jobsBefore);
    expect(jobsBefore.executions.flat().map((e) => e.state)).toEqual(['queued', 'canceled', 'running', 'failed', 'succeeded', 'queued']);
    await expect(jobs.create(storedJob('old-job', { uid: DELETED_JOB_UID }), ['none'])).rejects.toBeInstanceOf(JobUidUsedError);
    expect(telemetryRows.events).toBeGreaterThan(0);
    for (const [table, rows] of Object.entries(telemetryRows)) {
      expect(result.stdout).toMatch(new RegExp(`^${table}\\s+${rows}\\s+${rows}$`, 'm'));
    }

    // A replica on a data dir of its own: the signing key and the accounts can only come from the database.
    const replica = await startHubProcess(scratchDir('flotilla-migrated-'), [
      '--database',
      url,
      '--secrets-key-file',
      join(dataDir, 'secrets.key'),
    ]);
    const admin = readFileSync(join(dataDir, 'admin.key'), 'utf8').trim();
    expect((await http(replica.url, 'GET', '/api/v1/whoami', undefined, bearer(admin))).body).toEqual({ name: 'admin', role: 'admin' });
    expect((await http(replica.url, 'GET', '/api/v1/whoami', undefined, bearer(operatorKey))).body).toEqual({
      name: 'ci',
      role: 'operator',
    });
    expect((await http(replica.url, 'GET', '/api/v1/whoami', undefined, bearer('not-a-key'))).status).toBe(401);
    const after = await apiView(replica.url, admin);
    expect(after).toEqual(before);
    expect(after.history).toMatchObject({
      items: expect.arrayContaining([
        expect.objectContaining({ revision: 3, cause: 'rollback to 1' }),
        expect.objectContaining({ revision: 4, cause: 'apply', source: 'git:5e1f' }),
      ]),
    });
    expect(after.apps).toMatchObject({ revision: 4, scope: 'fleet' });

    // New audit ids follow the highest the single hub gave out.
    const db = new PgDatabase(parsePostgresUrl(url), pino({ level: 'silent' }));
    cleanup.add('audit pool', () => db.close());
    const next = await new PgAuditStore(db).denied({ actor: 'ci', device: 'mig-1', kind: 'exec', what: 'id' }, 'operator test');
    expect(next).toBe(auditHigh + 1);
    // Agent targets read back as the single hub stored them, and revision numbers go on after its highest.
    const agentTargets = new PgAgentTargetStore(db);
    expect({ targets: await agentTargets.list(), deleted: await agentTargets.revision(3) }).toEqual(agentTargetsBefore);
    expect(agentTargetsBefore.deleted).toMatchObject({ name: 'device-none', release: { version: '0.4.0' } });
    const moved = await agentTargets.put({ name: 'device-none', scheduling: { devices: ['none'] }, release: release('0.5.0') });
    expect(moved).toMatchObject({ target: { revision: 4 }, changed: true });
    // The events a replica reads from the database are the ones the single hub answered with.
    expect({ events: await new PgTelemetryReads(db).queryEvents({ tail: 1000, limit: 1000 }) }).toEqual(eventsBefore);
    const [stored] = await db.query<{ id: number }>(
      'INSERT INTO events (device, seq, received_ms, ts, ts_ms, type, message) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id',
      ['mig-1', 1_000_000, Date.now(), new Date().toISOString(), Date.now(), 'test', 'stored after the move'],
    );
    expect(stored?.id).toBe(eventsHigh + 1);

    // Devices pinned to the old key accept what the new hub signs, with the old secret resolved in it.
    const fleet = await startFleet({
      hubUrl: `mqtt://127.0.0.1:${replica.mqttPort}`,
      count: DEVICES,
      idPrefix: 'mig',
      labels: () => ({ zone: 'a' }),
      resyncIntervalMs: 500,
      agent: { stateIntervalMs: 200, hubKey: before.hubKey },
    });
    cleanup.add('fleet on the migrated hub', () => fleet.close());
    const applied = await http(replica.url, 'POST', '/api/v1/apps', webApp('5.0'), bearer(operatorKey));
    expect(applied.body).toMatchObject({ revision: 5 });
    await waitFor(
      'revision 5 running on every device',
      async () => {
        const list = ((await http(replica.url, 'GET', '/api/v1/devices', undefined, bearer(admin))).body as List<DeviceView>).items;
        return list.filter((d) => d.apps.some((a) => a.name === 'web' && a.revision === 5 && a.phase === 'running')).length === DEVICES;
      },
      { timeoutMs: 30_000 },
    );
    const watcher = await connectClient(`mqtt://127.0.0.1:${replica.mqttPort}`, { clientId: 'migrate-watcher' });
    cleanup.add('watcher', () => closeClient(watcher));
    const inbox = new Inbox(watcher);
    await watcher.subscribeAsync(topics.device('mig-0', 'desired'), { qos: 1 });
    const desired = await inbox.waitFor<DesiredState>(topics.device('mig-0', 'desired'), (d) => d.apps[0]?.revision === 5);
    expect(desired.apps[0]!.containers[0]!.env).toEqual([{ name: 'TOKEN', value: SECRET_VALUE }]);
    await fleet.close();
    await replica.proc.stop();

    const counts = await rowsIn(url);
    const dry = await migrate(['--from', dataDir, '--to', url, '--dry-run']);
    expect(dry.code).toBe(2);
    expect(dry.stdout).toMatch(/already holds a hub's data \(apps 1, app_revisions 5, devices 6, .*\): migrate would refuse it$/m);
    expect(dry.stderr).toMatch(/^error: .* already holds a hub's data \(apps 1, app_revisions 5, devices 6, .*\)$/m);
    expect(dry.stderr).toMatch(/create an empty database and migrate into that/);
    const second = await migrate(['--from', dataDir, '--to', url]);
    expect(second.code).toBe(2);
    expect(second.stderr).toMatch(/already holds a hub's data \(apps 1, app_revisions 5, devices 6, .*\)/);
    expect(second.stderr).toMatch(/create an empty database and migrate into that/);
    expect(await rowsIn(url)).toEqual(counts);
  });

  it('refuses a wrong secrets key before anything is written', async () => {
    const url = await postgres.createDatabase('wrong_key');
    const keyDir = scratchDir('flotilla-wrong-key-');
    writeFileSync(join(keyDir, 'secrets.key'), `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
    const result = await migrate(['--from', dataDir, '--to', url, '--secrets-key-file', join(keyDir, 'secrets.key')]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/the secrets key from .*secrets\.key does not open secret "api-token" in hub\.db/);
    expect(await rowsIn(url)).toBe('no tables');
    const fromEnv = await migrate(['--from', dataDir, '--to', url], { FLOTILLA_SECRETS_KEY: randomBytes(32).toString('base64') });
    expect(fromEnv.code).toBe(2);
    expect(fromEnv.stderr).toMatch(/the secrets key from FLOTILLA_SECRETS_KEY does not open/);
    expect(await rowsIn(url)).toBe('no tables');
  });

  it('rolls back a copy that does not read back as hub.db holds it, naming the table and row', async () => {
    for (const [name, trigger] of [
      // The first device by key is always in the sample.
      ['altered', "IF NEW.id = 'mig-0' THEN NEW.operator_labels := '{}'; END IF; RETURN NEW;"],
      ['dropped', "IF NEW.id = 'reg-1' THEN RETURN NULL; END IF; RETURN NEW;"],
    ] as const) {
      const url = await postgres.createDatabase(name);
      // The schema a replica's start makes, with a trigger that changes what the copy writes.
      await (await openPostgres(url, { logger: pino({ level: 'silent' }) })).close();
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      await client.query(`CREATE FUNCTION meddle() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN ${trigger} END $$`);
      await client.query('CREATE TRIGGER meddle BEFORE INSERT ON devices FOR EACH ROW EXECUTE FUNCTION meddle()');
      await client.end();
      const result = await migrate(['--from', dataDir, '--to', url]);
      expect(result.code, name).toBe(1);
      expect(result.stderr).toMatch(
        name === 'altered'
          ? /row id=mig-0 of devices reads back from PostgreSQL with a different operator_labels; nothing was copied/
          : /devices holds 5 rows in PostgreSQL after the copy, the data dir 6; nothing was copied/,
      );
      expect(result.stderr).toMatch(/the copy was rolled back/);
      const rows = await rowsIn(url);
      expect(rows).not.toBe('no tables');
      expect(Object.values(rows as Record<string, number>).every((n) => n === 0)).toBe(true);
    }
  });

  it('waits a few seconds for a database another session holds, then refuses, and copies once it is let go', async () => {
    const url = await postgres.createDatabase('busy');
    await (await openPostgres(url, { logger: pino({ level: 'silent' }) })).close();
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    cleanup.add('busy client', () => client.end());
    await client.query('BEGIN');
    await client.query('SELECT count(*) FROM apps');
    const busy = await migrate(['--from', dataDir, '--to', url]);
    expect(busy.code).toBe(2);
    expect(busy.stderr).toMatch(/is in use: another session kept its tables for 5 s/);
    await client.query('ROLLBACK');
    const copied = await migrate(['--from', dataDir, '--to', url]);
    expect(copied.stderr).toBe('');
    expect(copied.code).toBe(0);
    expect(copied.stdout).toMatch(/^devices\s+6\s+6$/m);
  });

  it('copies what a hub killed with SIGKILL left in its WAL', async () => {
    const hub = await startHubProcess(scratchDir('flotilla-killed-hub-'));
    for (let i = 0; i < 5; i++) expect((await http(hub.url, 'PUT', `/api/v1/secrets/kept-${i}`, { value: `v${i}` })).status).toBe(200);
    await hub.proc.stop(true);
    expect(existsSync(join(hub.dataDir, 'hub.db-wal'))).toBe(true);
    const url = await postgres.createDatabase('killed');
    const result = await migrate(['--from', hub.dataDir, '--to', url]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^secrets\s+5\s+5$/m);
  });

  it('refuses a data dir that is not a stopped hub of this version with sealed data', async () => {
    const url = await postgres.createDatabase('refusals');
    const empty = scratchDir('flotilla-not-a-hub-');
    const none = await migrate(['--from', empty, '--to', url]);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/there is no hub\.db in /);

    const old = scratchDir('flotilla-old-hub-');
    openDatabase(join(old, 'hub.db'), MIGRATIONS.slice(0, 6)).close();
    const older = await migrate(['--from', old, '--to', url]);
    expect(older.code).toBe(2);
    expect(older.stderr).toContain(`has schema version 6, older than this Flotilla's (${MIGRATIONS.length})`);
    expect(older.stderr).toMatch(/start the hub of this Flotilla on the data dir once and stop it/);

    const plain = scratchDir('flotilla-plain-hub-');
    openDatabase(join(plain, 'telemetry.db'), TELEMETRY_MIGRATIONS).close();
    const db = openDatabase(join(plain, 'hub.db'));
    db.prepare('INSERT INTO secrets (name, value, updated_at) VALUES (?, ?, ?)').run('legacy', 'in plain text', new Date().toISOString());
    db.close();
    const unsealed = await migrate(['--from', plain, '--to', url]);
    expect(unsealed.code).toBe(2);
    expect(unsealed.stderr).toMatch(/holds 1 secret value\(s\) and 0 desired document\(s\) in plain text/);
    expect(await rowsIn(url)).toBe('no tables');
  });
});
