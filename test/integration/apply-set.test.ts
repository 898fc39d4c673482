/**
 * `apps.applyAll` and `apps.export` as a CI job and a backend service use them: a real hub (Aedes,
 * dispatcher, HTTP API) on a SQLite file and on a private PostgreSQL server, called over HTTP and
 * over the MQTT request API with a plain MQTT.js client, and two devices (plain MQTT clients
 * publishing their retained state) whose desired documents show what the fleet was told to run.
 */
import type { MqttClient } from 'mqtt';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type {
  AppDetail,
  AppHistory,
  ApplyAllResult,
  AppSpec,
  AppSummary,
  DesiredState,
  DeviceView,
  ExportedApp,
  List,
} from '../../shared/index.js';
import { Cleanup } from '../support/cleanup.js';
import { appSpec, deviceState } from '../support/fixtures.js';
import { http } from '../support/http.js';
import { startTestHub, type TestHub } from '../support/hub.js';
import { closeClient, connectClient, Inbox } from '../support/mqtt-client.js';
import { type PostgresServer, startPostgres } from '../support/postgres.js';

interface Answer<T = any> {
  ok: boolean;
  result?: T;
  error?: { code: string; message: string; details?: any };
}

/** One way of calling the API: both must answer alike. */
interface Transport {
  call<T = any>(method: string, params?: Record<string, unknown>): Promise<Answer<T>>;
}

/** HTTP: the method's declared route, its status mapped back onto ok/error. */
function httpTransport(hub: TestHub): Transport {
  const routes: Record<string, (p: Record<string, any>) => [string, string, unknown?]> = {
    'apps.applyAll': (p) => ['POST', '/api/v1/apply', p],
    'apps.export': (p) => ['GET', `/api/v1/app-specs${p.scope ? `?scope=${p.scope}` : ''}`],
    'apps.apply': (p) => ['POST', '/api/v1/apps', p.spec],
    'apps.list': () => ['GET', '/api/v1/apps'],
    'apps.get': (p) => ['GET', `/api/v1/apps/${p.name}`],
    'apps.history': (p) => ['GET', `/api/v1/apps/${p.name}/revisions`],
    'apps.revision': (p) => ['GET', `/api/v1/apps/${p.name}/spec?revision=${p.revision}`],
    'devices.get': (p) => ['GET', `/api/v1/devices/${p.id}`],
    'secrets.set': (p) => ['PUT', `/api/v1/secrets/${p.name}`, { value: p.value }],
  };
  return {
    async call(method, params = {}) {
      const route = routes[method];
      if (!route) throw new Error(`no HTTP route in this test for ${method}`);
      const [verb, path, body] = route(params);
      const res = await http(hub.httpUrl, verb, path, body);
      return res.status === 200 ? { ok: true, result: res.body } : { ok: false, error: res.body.error };
    },
  };
}

/** The MQTT request API: a request on the service's topic, the answer with its correlation id. */
async function mqttTransport(hub: TestHub, cleanup: Cleanup): Promise<Transport> {
  const client: MqttClient = await connectClient(hub.mqttUrl, { clientId: 'ci-svc' });
  cleanup.add('service client', () => closeClient(client));
  const inbox = new Inbox(client);
  await client.subscribeAsync('flotilla/v1/api/ci-svc/response', { qos: 1 });
  let seq = 0;
  return {
    async call(method, params) {
      const correlationId = `req-${++seq}`;
      await client.publishAsync(
        'flotilla/v1/api/ci-svc/request',
        JSON.stringify({ correlationId, method, ...(params ? { params } : {}) }),
        {
          qos: 1,
        },
      );
      return inbox.waitFor<Answer>('flotilla/v1/api/ci-svc/response', (r: any) => r.correlationId === correlationId);
    },
  };
}

/** A spec as a team keeps it in a file: its own key order, optional fields where the team wrote them. */
function webSpec(image = 'registry.local/web:1.0'): Record<string, unknown> {
  return {
    spec: {
      update: { strategy: 'start-then-kill' },
      containers: [
        {
          image,
          name: 'web',
          env: [
            { value: 'info', name: 'LOG_LEVEL' },
            { name: 'DB_PASSWORD', fromSecret: 'db-pass' },
          ],
        },
      ],
    },
    scheduling: { selectors: { site: 'roof' } },
    name: 'web',
  };
}

let postgres: PostgresServer | undefined;
afterAll(() => postgres?.close());

const ENGINES = [
  { engine: 'SQLite', transport: 'HTTP' },
  { engine: 'SQLite', transport: 'MQTT' },
  { engine: 'PostgreSQL', transport: 'HTTP' },
  { engine: 'PostgreSQL', transport: 'MQTT' },
] as const;

describe.each(ENGINES)('apps.applyAll on $engine over $transport', ({ engine, transport }) => {
  const cleanup = new Cleanup();
  let hub: TestHub;
  let api: Transport;
  /** HTTP, whatever the transport under test, for reading what the hub holds. */
  let look: Transport;

  beforeAll(async () => {
    if (engine === 'PostgreSQL') postgres ??= await startPostgres();
  }, 60_000);

  beforeEach(async () => {
    const config = engine === 'PostgreSQL' ? { database: await postgres!.createDatabase() } : {};
    hub = cleanup.add('hub', () => hub.close(), await startTestHub({ config }));
    look = httpTransport(hub);
    api = transport === 'HTTP' ? look : await mqttTransport(hub, cleanup);
    expect((await look.call('secrets.set', { name: 'db-pass', value: 's3cret' })).ok).toBe(true);
  });
  afterEach(() => cleanup.run());

  async function ok<T = any>(method: string, params?: Record<string, unknown>): Promise<T> {
    const answer = await api.call<T>(method, params);
    expect(answer.ok, JSON.stringify(answer.error)).toBe(true);
    return answer.result as T;
  }

  async function read<T = any>(method: string, params?: Record<string, unknown>): Promise<T> {
    const answer = await look.call<T>(method, params);
    expect(answer.ok, JSON.stringify(answer.error)).toBe(true);
    return answer.result as T;
  }

  /** Every app's current revision, scope and number of revisions: what a refused set or a dry run must leave as it was. */
  async function stored(): Promise<Record<string, { revision: number; scope: string | null; revisions: number[] }>> {
    const apps = (await read<List<AppSummary>>('apps.list')).items;
    const rows = await Promise.all(
      apps.map(async (app) => {
        const history = await read<AppHistory>('apps.history', { name: app.name });
        return [app.name, { revision: app.revision, scope: app.scope ?? null, revisions: history.items.map((i) => i.revision) }] as const;
      }),
    );
    return Object.fromEntries(rows);
  }

  /** A device reporting its labels, as an agent would; it keeps every desired document it is sent. */
  async function device(id: string, site: string): Promise<{ latest: () => DesiredState | undefined; inbox: Inbox; topic: string }> {
    const client = await connectClient(hub.mqttUrl, { clientId: id });
    cleanup.add(`device ${id}`, () => closeClient(client));
    const inbox = new Inbox(client);
    const topic = `flotilla/v1/devices/${id}/desired`;
    await client.subscribeAsync(topic, { qos: 1 });
    await client.publishAsync(`flotilla/v1/devices/${id}/state`, JSON.stringify(deviceState(id, { labels: { site } })), {
      qos: 1,
      retain: true,
    });
    await inbox.waitFor<DesiredState>(topic, () => true);
    return { latest: () => inbox.on(topic).at(-1)?.json as DesiredState | undefined, inbox, topic };
  }

  it('applies a set as one unit: each app created, configured or unchanged, with its devices, secrets, scope and source', async () => {
    await device('roof-2', 'roof');
    await device('roof-1', 'roof');
    await device('cellar-1', 'cellar');
    await ok('apps.apply', { spec: appSpec('api', { site: 'roof' }, 'registry.local/api:1.0') });
    await ok('apps.apply', { spec: appSpec('db', { site: 'cellar' }) });

    const result = await ok<ApplyAllResult>('apps.applyAll', {
      specs: [webSpec(), appSpec('api', { site: 'roof' }, 'registry.local/api:2.0'), appSpec('db', { site: 'cellar' })],
      scope: 'team-a',
      source: 'git:0123abc',
    });
    expect(result).toEqual({
      dryRun: false,
      source: 'git:0123abc',
      items: [
        {
          name: 'web',
          action: 'created',
          revision: 1,
          previousRevision: null,
          devices: { count: 2, ids: ['roof-1', 'roof-2'] },
          secrets: ['db-pass'],
          scope: 'team-a',
          previousScope: null,
        },
        {
          name: 'api',
          action: 'configured',
          revision: 2,
          previousRevision: 1,
          devices: { count: 2, ids: ['roof-1', 'roof-2'] },
          secrets: [],
          scope: 'team-a',
          previousScope: null,
        },
        {
          name: 'db',
          action: 'unchanged',
          revision: 1,
          previousRevision: 1,
          devices: { count: 1, ids: ['cellar-1'] },
          secrets: [],
          scope: 'team-a',
          previousScope: null,
        },
      ],
      pruned: [],
    });
    expect(await stored()).toEqual({
      api: { revision: 2, scope: 'team-a', revisions: [2, 1] },
      db: { revision: 1, scope: 'team-a', revisions: [1] },
      web: { revision: 1, scope: 'team-a', revisions: [1] },
    });

    // Provenance: the new revisions carry the source, the older one none.
    const history = await ok<AppHistory>('apps.history', { name: 'api' });
    expect(history.items.map((i) => [i.revision, i.cause, i.source])).toEqual([
      [2, 'apply', 'git:0123abc'],
      [1, 'apply', undefined],
    ]);
    expect(await ok('apps.revision', { name: 'web', revision: 1 })).toMatchObject({ revision: 1, source: 'git:0123abc', spec: webSpec() });
    expect(await ok<AppDetail>('apps.get', { name: 'db' })).toMatchObject({ name: 'db', revision: 1, scope: 'team-a' });
    expect((await ok<List<AppSummary>>('apps.list')).items.map((a) => [a.name, a.scope])).toEqual([
      ['api', 'team-a'],
      ['db', 'team-a'],
      ['web', 'team-a'],
    ]);

    // The devices are told: the roof runs web with its secret resolved, and api's new revision.
    const roof = await read<DeviceView>('devices.get', { id: 'roof-1' });
    expect(roof.desiredRevision).toBeGreaterThan(0);
    const roofDevice = await connectClient(hub.mqttUrl);
    cleanup.add('late subscriber', () => closeClient(roofDevice));
    const late = new Inbox(roofDevice);
    await roofDevice.subscribeAsync('flotilla/v1/devices/roof-1/desired', { qos: 1 });
    const desired = await late.waitFor<DesiredState>('flotilla/v1/devices/roof-1/desired', (d) => d.apps.length === 2);
    expect(desired.apps.map((a) => [a.name, a.revision, a.containers[0]?.image])).toEqual([
      ['api', 2, 'registry.local/api:2.0'],
      ['web', 1, 'registry.local/web:1.0'],
    ]);
    expect(desired.apps[1]?.containers[0]?.env).toContainEqual({ name: 'DB_PASSWORD', value: 's3cret' });
  });

  it('refuses a set with any bad spec, names every problem at specs[i], and stores nothing', async () => {
    await ok('apps.applyAll', { specs: [appSpec('api')], scope: 'team-a' });
    const before = await stored();

    const refused = await api.call('apps.applyAll', {
      specs: [
        webSpec('registry.local/web:2.0'),
        { name: 'api', scheduling: { selectors: { site: 'roof' } }, spec: { containers: [{ name: 'api', image: 42, ports: ['eighty'] }] } },
        {
          ...appSpec('cache'),
          spec: {
            containers: [{ name: 'cache', image: 'registry.local/cache:1', env: [{ name: 'TOKEN', fromSecret: 'no-such-secret' }] }],
          },
        },
        appSpec('web'),
      ],
      scope: 'team-a',
      source: 'git:bad',
    });
    expect(refused.ok).toBe(false);
    expect(refused.error?.code).toBe('invalid_spec');
    const issues: { path: string; message: string }[] = refused.error?.details?.issues ?? [];
    const paths = issues.map((i) => i.path);
    expect(paths).toEqual(
      expect.arrayContaining(['specs[1].spec.containers[0].image', 'specs[2].spec.containers[0].env[0].fromSecret', 'specs[3].name']),
    );
    expect(
      paths.every((p) => /^specs\[[123]\]\./.test(p)),
      paths.join(', '),
    ).toBe(true);
    expect(refused.error?.details.issues).toContainEqual({
      path: 'specs[2].spec.containers[0].env[0].fromSecret',
      message: 'secret "no-such-secret" does not exist',
    });
    expect(refused.error?.details.issues).toContainEqual({
      path: 'specs[3].name',
      message: 'app "web" is already specs[0]: each app at most once',
    });
    expect(refused.error?.message).toMatch(
      /^invalid app specs \(specs\[1\]\.spec\.containers\[0\]\.image: must be string, and \d+ more\)$/,
    );
    expect(await stored()).toEqual(before);

    // prune needs the scope it prunes.
    const noScope = await api.call('apps.applyAll', { specs: [appSpec('api')], prune: true });
    expect(noScope.error).toMatchObject({ code: 'invalid_request', details: { issues: [{ path: 'prune' }] } });
    expect(await stored()).toEqual(before);
  });

  it('stores nothing on a dry run, tells no device anything, and answers as the apply that follows', async () => {
    const roof = await device('roof-1', 'roof');
    await ok('apps.applyAll', { specs: [webSpec(), appSpec('old', { site: 'roof' })], scope: 'team-a' });
    await roof.inbox.waitFor<DesiredState>(roof.topic, (d) => d.apps.length === 2);
    const before = await stored();
    const desiredBefore = roof.latest()!;
    const set = {
      specs: [webSpec('registry.local/web:2.0'), appSpec('new', { site: 'roof' })],
      scope: 'team-a',
      prune: true,
      source: 'git:feed',
    };

    const dry = await ok<ApplyAllResult>('apps.applyAll', { ...set, dryRun: true });
    expect(dry.items.map((i) => [i.name, i.action, i.revision, i.previousRevision])).toEqual([
      ['web', 'configured', 2, 1],
      ['new', 'created', 1, null],
    ]);
    expect(dry.items[0]?.current).toEqual(webSpec());
    expect(dry.items[1]).not.toHaveProperty('current');
    expect(dry.pruned).toEqual([{ name: 'old', revision: 1, scope: 'team-a', current: appSpec('old', { site: 'roof' }) }]);
    expect(await stored()).toEqual(before);

    // A change the device must hear of, made after the dry run: its document carries that and nothing of the dry run.
    await ok('apps.apply', { spec: appSpec('marker', { site: 'roof' }) });
    const after = await roof.inbox.waitFor<DesiredState>(roof.topic, (d) => d.apps.some((a) => a.name === 'marker'));
    expect(after.apps.filter((a) => a.name !== 'marker')).toEqual(desiredBefore.apps);
    expect((await read<DeviceView>('devices.get', { id: 'roof-1' })).desiredRevision).toBe(after.revision);

    const applied = await ok<ApplyAllResult>('apps.applyAll', { ...set, expectPruned: dry.pruned.map((p) => p.name) });
    const { current: _, ...configured } = dry.items[0]!;
    expect(applied).toEqual({
      ...dry,
      dryRun: false,
      items: [configured, dry.items[1]],
      pruned: [{ name: 'old', revision: 1, scope: 'team-a' }],
    });
    const now = await roof.inbox.waitFor<DesiredState>(roof.topic, (d) => d.apps.some((a) => a.name === 'new'));
    expect(now.apps.map((a) => [a.name, a.revision])).toEqual([
      ['marker', 1],
      ['new', 1],
      ['web', 2],
    ]);
  });

  it('prunes only the unnamed apps of its scope, refuses another scope, and refuses a prune set other than expected', async () => {
    await ok('apps.applyAll', { specs: [webSpec(), appSpec('api'), appSpec('old')], scope: 'team-a' });
    await ok('apps.applyAll', { specs: [appSpec('db')], scope: 'team-b' });
    await ok('apps.apply', { spec: appSpec('by-hand') });
    const before = await stored();

    const other = await api.call('apps.applyAll', { specs: [appSpec('new'), appSpec('db', { site: 'x' })], scope: 'team-a' });
    expect(other.error).toMatchObject({
      code: 'conflict',
      message: 'app "db" belongs to prune scope "team-b", not "team-a"',
      details: { issues: [{ path: 'specs[1].name' }] },
    });
    const unexpected = await api.call('apps.applyAll', { specs: [webSpec()], scope: 'team-a', prune: true, expectPruned: ['old'] });
    expect(unexpected.error).toMatchObject({ code: 'conflict', details: { expected: ['old'], actual: ['api', 'old'] } });
    expect(await stored()).toEqual(before);

    const pruned = await ok<ApplyAllResult>('apps.applyAll', {
      specs: [webSpec(), appSpec('by-hand')],
      scope: 'team-a',
      prune: true,
      expectPruned: ['old', 'api'],
    });
    expect(pruned.pruned).toEqual([
      { name: 'api', revision: 1, scope: 'team-a' },
      { name: 'old', revision: 1, scope: 'team-a' },
    ]);
    expect(pruned.items.map((i) => [i.name, i.action, i.scope, i.previousScope])).toEqual([
      ['web', 'unchanged', 'team-a', 'team-a'],
      ['by-hand', 'unchanged', 'team-a', null],
    ]);
    expect(await stored()).toEqual({
      'by-hand': { revision: 1, scope: 'team-a', revisions: [1] },
      db: { revision: 1, scope: 'team-b', revisions: [1] },
      web: { revision: 1, scope: 'team-a', revisions: [1] },
    });
  });

  it('exports every app as applied, key order and all, and applying the export back changes nothing', async () => {
    const specs: Record<string, unknown>[] = [
      webSpec(),
      {
        name: 'api',
        scheduling: { devices: ['dev-2', 'dev-1'] },
        spec: { containers: [{ name: 'api', image: 'registry.local/api:1.0' }] },
      },
      appSpec('zeta', { zone: 'b', site: 'a' }),
    ];
    await ok('apps.applyAll', { specs, scope: 'team-a', source: 'git:1' });
    await ok('apps.apply', { spec: appSpec('by-hand') });
    await ok('apps.applyAll', { specs: [appSpec('db')], scope: 'team-b' });

    const all = await ok<List<ExportedApp>>('apps.export');
    expect(all.items.map((a) => [a.name, a.revision, a.scope])).toEqual([
      ['api', 1, 'team-a'],
      ['by-hand', 1, null],
      ['db', 1, 'team-b'],
      ['web', 1, 'team-a'],
      ['zeta', 1, 'team-a'],
    ]);
    const teamA = await ok<List<ExportedApp>>('apps.export', { scope: 'team-a' });
    const byName = new Map(teamA.items.map((a) => [a.name, a.spec]));
    for (const spec of specs) {
      // Deep equal including key order: the export is the document as it was applied.
      expect(JSON.stringify(byName.get(spec.name as string))).toBe(JSON.stringify(spec));
    }

    const before = await stored();
    const again = await ok<ApplyAllResult>('apps.applyAll', {
      specs: teamA.items.map((a) => a.spec as AppSpec),
      scope: 'team-a',
      prune: true,
      source: 'git:2',
    });
    expect(again.items.map((i) => i.action)).toEqual(['unchanged', 'unchanged', 'unchanged']);
    expect(again.pruned).toEqual([]);
    expect(await stored()).toEqual(before);
  });
});

describe('POST /api/v1/apply body size', () => {
  const cleanup = new Cleanup();
  let hub: TestHub;
  beforeEach(async () => {
    hub = cleanup.add('hub', () => hub.close(), await startTestHub());
  });
  afterEach(() => cleanup.run());

  /** A spec padded with a long env value, `kib` KiB in all. */
  const padded = (name: string, kib: number) => ({
    ...appSpec(name),
    spec: { containers: [{ name: 'main', image: 'registry.local/x:1', env: [{ name: 'PAD', value: 'x'.repeat(kib * 1024) }] }] },
  });

  it('takes a set of several MiB where every other route keeps 1 MiB, and refuses one past 8 MiB', async () => {
    const specs = Array.from({ length: 600 }, (_, i) => padded(`app-${i}`, 4));
    const big = await http(hub.httpUrl, 'POST', '/api/v1/apply', { specs, dryRun: true });
    expect(big.status, JSON.stringify(big.body).slice(0, 300)).toBe(200);
    expect((big.body as ApplyAllResult).items).toHaveLength(600);

    const single = await http(hub.httpUrl, 'POST', '/api/v1/apps', padded('one', 1100));
    expect(single.status).toBe(400);
    expect(single.body.error.message).toBe('request body is larger than 1048576 bytes');

    const huge = await http(hub.httpUrl, 'POST', '/api/v1/apply', { specs: Array.from({ length: 9 }, (_, i) => padded(`app-${i}`, 1000)) });
    expect(huge.status).toBe(400);
    expect(huge.body.error.message).toBe('request body is larger than 8388608 bytes');
    expect((await http(hub.httpUrl, 'GET', '/api/v1/apps')).body.items).toEqual([]);
  });
});
