/**
 * App revisions as an operator and a backend service use them, against a real
 * hub (Aedes, dispatcher, HTTP API, SQLite file): `flotilla rollout history`
 * and `flotilla rollback` run as real CLI processes, `apps.rollback` over a
 * real MQTT.js client, and a device (a plain MQTT client publishing its
 * retained state) that must be told to run the rolled-back spec.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { MqttClient } from 'mqtt';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { MIGRATIONS } from '../../broker/store/sqlite/migrations.js';
import { type AppHistory, contentHash, type DesiredState, type RollbackResult, validateAppSpec } from '../../shared/index.js';
import { Cleanup } from '../support/cleanup.js';
import { appSpec, deviceState } from '../support/fixtures.js';
import { http } from '../support/http.js';
import { startTestHub, type TestHub } from '../support/hub.js';
import { closeClient, connectClient, Inbox } from '../support/mqtt-client.js';
import { runCli } from '../support/processes.js';
import { scratchDir } from '../support/scratch.js';

/** Each CLI run starts node and tsx (about a second on a busy two-core machine); these tests make several. */
const SLOW = { timeout: 90_000 };

const image = (version: string) => `registry.local/web:${version}`;
const webSpec = (version: string) => appSpec('web', { site: 'roof' }, image(version));

describe('app revisions: history and rollback', SLOW, () => {
  const cleanup = new Cleanup();
  let hub: TestHub;

  beforeEach(async () => {
    hub = cleanup.add('hub', () => hub.close(), await startTestHub());
  });

  afterEach(() => cleanup.run());

  const flotilla = (...args: string[]) => runCli(args, { env: { FLOTILLA_HUB: hub.httpUrl } });
  const api = (method: string, path: string, body?: unknown) => http(hub.httpUrl, method, path, body);

  async function apply(spec: unknown): Promise<void> {
    const res = await api('POST', '/api/v1/apps', spec);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
  }

  async function history(name = 'web'): Promise<AppHistory> {
    const res = await api('GET', `/api/v1/apps/${name}/revisions`);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    return res.body as AppHistory;
  }

  /** A device that reports its labels, as an agent would, and records every desired document it is sent. */
  async function registerDevice(id: string): Promise<{ inbox: Inbox; desired: string }> {
    const client = await connectClient(hub.mqttUrl, { clientId: id });
    cleanup.add(`device ${id}`, () => closeClient(client));
    const inbox = new Inbox(client);
    const desired = `flotilla/v1/devices/${id}/desired`;
    await client.subscribeAsync(desired, { qos: 1 });
    await client.publishAsync(`flotilla/v1/devices/${id}/state`, JSON.stringify(deviceState(id, { labels: { site: 'roof' } })), {
      qos: 1,
      retain: true,
    });
    await inbox.waitFor<DesiredState>(desired, (d) => d.revision === 1);
    return { inbox, desired };
  }

  /** What a device connecting now would get: the retained desired document, read by a fresh subscriber. */
  async function retainedDesired(topic: string, where: (d: DesiredState) => boolean): Promise<DesiredState> {
    const late = await connectClient(hub.mqttUrl);
    try {
      const inbox = new Inbox(late);
      await late.subscribeAsync(topic, { qos: 1 });
      const doc = await inbox.waitFor<DesiredState>(topic, where);
      expect(inbox.on(topic).at(-1)?.retain).toBe(true);
      return doc;
    } finally {
      await closeClient(late);
    }
  }

  it('lists every apply newest first, rolls back to the previous and to a chosen revision, and devices get the restored spec', async () => {
    const { inbox, desired } = await registerDevice('dev-1');
    for (const version of ['1.0', '2.0', '3.0']) await apply(webSpec(version));

    const applied = await history();
    expect(applied.name).toBe('web');
    expect(applied.current).toBe(3);
    expect(applied.items.map((r) => [r.revision, r.images, r.cause, r.current])).toEqual([
      [3, [image('3.0')], 'apply', true],
      [2, [image('2.0')], 'apply', false],
      [1, [image('1.0')], 'apply', false],
    ]);
    const [, second] = applied.items;
    expect(second?.createdAt).toEqual(expect.any(String));

    // The CLI table: newest first, the current one marked.
    const table = await flotilla('rollout', 'history', 'web');
    expect(table).toMatchObject({ code: 0, stderr: '' });
    const lines = table.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^REVISION +CREATED +IMAGES +CAUSE +SOURCE$/);
    expect(lines.slice(1)).toEqual([
      expect.stringMatching(/^3\* +\d+s +registry\.local\/web:3\.0 +apply +<none>$/),
      expect.stringMatching(/^2 +\d+s +registry\.local\/web:2\.0 +apply +<none>$/),
      expect.stringMatching(/^1 +\d+s +registry\.local\/web:1\.0 +apply +<none>$/),
    ]);
    const asJson = await flotilla('rollout', 'history', 'web', '-o', 'json');
    expect(asJson.code).toBe(0);
    expect(JSON.parse(asJson.stdout)).toEqual(applied);

    // No flag: back to the revision before the current one, as a new revision.
    const undo = await flotilla('rollback', 'web');
    expect(undo).toEqual({ code: 0, stdout: 'app/web rolled back to revision 2 (now revision 4)\n', stderr: '' });
    const afterUndo = await history();
    expect(afterUndo.current).toBe(4);
    expect(afterUndo.items[0]).toMatchObject({ revision: 4, images: [image('2.0')], cause: 'rollback to 2', current: true });
    expect(afterUndo.items[0]?.specHash).toBe(second?.specHash);
    expect((await api('GET', '/api/v1/apps/web')).body).toMatchObject({ revision: 4, spec: webSpec('2.0') });

    // The device is told to run revision 4, with revision 2's image, and a device connecting later gets the same.
    const live = await inbox.waitFor<DesiredState>(desired, (d) => d.apps[0]?.revision === 4);
    expect(live.apps[0]?.containers.map((c) => c.image)).toEqual([image('2.0')]);
    const retained = await retainedDesired(desired, (d) => d.revision === live.revision);
    expect(retained.apps).toEqual(live.apps);

    const toFirst = await flotilla('rollback', 'web', '--to-revision', '1');
    expect(toFirst).toEqual({ code: 0, stdout: 'app/web rolled back to revision 1 (now revision 5)\n', stderr: '' });
    const fifth = await inbox.waitFor<DesiredState>(desired, (d) => d.apps[0]?.revision === 5);
    expect(fifth.apps[0]?.containers.map((c) => c.image)).toEqual([image('1.0')]);

    // Rolling back to what already runs makes no revision and sends devices nothing new.
    const same = await flotilla('rollback', 'web', '--to-revision', '1', '-o', 'json');
    expect(same.code).toBe(0);
    expect(JSON.parse(same.stdout)).toEqual({ name: 'web', revision: 5, changed: false, rolledBackTo: 1 });
    const sameTable = await flotilla('rollback', 'web', '--to-revision', '5');
    expect(sameTable).toEqual({ code: 0, stdout: 'app/web unchanged (revision 5 is already the spec of revision 5)\n', stderr: '' });

    const final = await history();
    expect(final.items.map((r) => [r.revision, r.cause, r.current])).toEqual([
      [5, 'rollback to 1', true],
      [4, 'rollback to 2', false],
      [3, 'apply', false],
      [2, 'apply', false],
      [1, 'apply', false],
    ]);
    const revisionsSent = inbox.on(desired).map((m) => (m.json as DesiredState).apps[0]?.revision);
    expect(revisionsSent.filter((r) => r !== undefined)).toEqual([1, 2, 3, 4, 5]);
  });

  it('exits 3 for an unknown revision or app and 2 for an app with nothing to roll back to, and changes nothing', async () => {
    await apply(webSpec('1.0'));

    const nothingBefore = await flotilla('rollback', 'web');
    expect(nothingBefore).toEqual({ code: 2, stdout: '', stderr: 'error: app "web" has no revision before 1\n' });

    const missingRevision = await flotilla('rollback', 'web', '--to-revision', '7');
    expect(missingRevision).toEqual({ code: 3, stdout: '', stderr: 'error: app "web" has no revision 7\n' });

    const missingApp = await flotilla('rollback', 'ghost');
    expect(missingApp).toEqual({ code: 3, stdout: '', stderr: 'error: app "ghost" not found\n' });
    expect(await flotilla('rollout', 'history', 'ghost')).toEqual({ code: 3, stdout: '', stderr: 'error: app "ghost" not found\n' });

    const notANumber = await flotilla('rollback', 'web', '--to-revision', 'latest');
    expect(notANumber.code).toBe(2);
    expect(notANumber.stderr).toContain("option '--to-revision <n>' argument 'latest' is invalid");

    const after = await history();
    expect(after.items.map((r) => r.revision)).toEqual([1]);
  });

  it("prints one revision's spec with --revision, as YAML that apply -f takes back", async () => {
    for (const version of ['1.0', '2.0']) await apply(webSpec(version));

    const first = await flotilla('rollout', 'history', 'web', '--revision', '1');
    expect(first).toMatchObject({ code: 0, stderr: '' });
    const [header, ...yamlLines] = first.stdout.split('\n');
    expect(header).toMatch(/^# app\/web revision 1 \(apply\), made \d+s ago, not current$/);
    expect(validateAppSpec(parseYaml(yamlLines.join('\n')))).toEqual({ ok: true, value: webSpec('1.0') });

    const asJson = await flotilla('rollout', 'history', 'web', '--revision', '2', '-o', 'json');
    expect(JSON.parse(asJson.stdout)).toMatchObject({ name: 'web', revision: 2, current: true, cause: 'apply', spec: webSpec('2.0') });

    // Saved to a file and applied, revision 1's spec becomes revision 3, as a rollback would make it.
    const file = join(scratchDir('flotilla-it-rev-'), 'web-1.yaml');
    writeFileSync(file, first.stdout);
    expect(await flotilla('apply', '-f', file)).toMatchObject({ code: 0, stdout: 'app/web configured (revision 3)\n' });
    expect((await api('GET', '/api/v1/apps/web')).body).toMatchObject({ revision: 3, spec: webSpec('1.0') });

    expect(await flotilla('rollout', 'history', 'web', '--revision', '9')).toEqual({
      code: 3,
      stdout: '',
      stderr: 'error: app "web" has no revision 9\n',
    });
    const zero = await flotilla('rollout', 'history', 'web', '--revision', '0');
    expect(zero.code).toBe(2);
    expect(zero.stderr).toContain("option '--revision <n>' argument '0' is invalid. expected a whole number, 1 or more.");
  });

  it('refuses to roll back to a revision whose secret no longer exists, as apply would', async () => {
    expect((await api('PUT', '/api/v1/secrets/web-token', { value: 's3cr3t' })).status).toBe(200);
    const base = webSpec('1.0');
    await apply({ ...base, spec: { containers: [{ ...base.spec.containers[0], env: [{ name: 'TOKEN', fromSecret: 'web-token' }] }] } });
    await apply(webSpec('2.0'));
    // No current revision uses the secret any more, so it may be deleted.
    expect((await api('DELETE', '/api/v1/secrets/web-token')).status).toBe(200);

    const res = await api('POST', '/api/v1/apps/web/rollback', {});
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: 'invalid_spec', message: expect.stringContaining('revision 1') });
    expect(res.body.error.details.issues).toEqual([
      { path: 'spec.containers[0].env[0].fromSecret', message: expect.stringContaining('web-token') },
    ]);

    const cli = await flotilla('rollback', 'web');
    expect(cli.code).toBe(2);
    expect(cli.stderr).toContain('spec.containers[0].env[0].fromSecret');
    expect((await history()).current).toBe(2);
  });

  it('serves history and rollback over HTTP, with or without a body', async () => {
    await apply(webSpec('1.0'));
    await apply(webSpec('2.0'));

    // `curl -X POST …/rollback`: no body at all is the previous revision.
    const bare = await fetch(`${hub.httpUrl}/api/v1/apps/web/rollback`, { method: 'POST' });
    expect(bare.status).toBe(200);
    expect(await bare.json()).toEqual({ name: 'web', revision: 3, changed: true, rolledBackTo: 1 });

    const chosen = await api('POST', '/api/v1/apps/web/rollback', { toRevision: 2 });
    expect(chosen.body).toEqual({ name: 'web', revision: 4, changed: true, rolledBackTo: 2 });

    const zero = await api('POST', '/api/v1/apps/web/rollback', { toRevision: 0 });
    expect(zero.status).toBe(400);
    expect(zero.body.error.code).toBe('invalid_request');
    expect(zero.body.error.details.issues.map((i: { path: string }) => i.path)).toEqual(['toRevision']);

    const wrongMethod = await api('GET', '/api/v1/apps/web/rollback');
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.get('allow')).toBe('POST');
    expect((await api('GET', '/api/v1/apps/ghost/revisions')).status).toBe(404);
  });

  it("rolls back over the MQTT request API, answering with the request's correlation id", async () => {
    const service: MqttClient = await connectClient(hub.mqttUrl, { clientId: 'svc-rollback' });
    cleanup.add('service client', () => closeClient(service));
    const inbox = new Inbox(service);
    const response = 'flotilla/v1/api/svc-rollback/response';
    await service.subscribeAsync(response, { qos: 1 });
    const call = async (correlationId: string, method: string, params: Record<string, unknown>) => {
      await service.publishAsync('flotilla/v1/api/svc-rollback/request', JSON.stringify({ correlationId, method, params }), { qos: 1 });
      return inbox.waitFor<{ correlationId: string; ok: boolean; result?: any; error?: any }>(
        response,
        (r) => r.correlationId === correlationId,
      );
    };

    expect((await call('a1', 'apps.apply', { spec: webSpec('1.0') })).ok).toBe(true);
    expect((await call('a2', 'apps.apply', { spec: webSpec('2.0') })).ok).toBe(true);

    const rolledBack = await call('rb-1', 'apps.rollback', { name: 'web' });
    expect(rolledBack).toEqual({
      correlationId: 'rb-1',
      ok: true,
      result: { name: 'web', revision: 3, changed: true, rolledBackTo: 1 } satisfies RollbackResult,
    });

    const listed = await call('h-1', 'apps.history', { name: 'web' });
    expect(listed.ok).toBe(true);
    expect(listed.result.items.map((r: { revision: number; cause: string }) => [r.revision, r.cause])).toEqual([
      [3, 'rollback to 1'],
      [2, 'apply'],
      [1, 'apply'],
    ]);

    const missing = await call('rb-2', 'apps.rollback', { name: 'web', toRevision: 9 });
    expect(missing).toMatchObject({
      correlationId: 'rb-2',
      ok: false,
      error: { code: 'not_found', message: 'app "web" has no revision 9' },
    });
  });
});

describe('a hub database from before revision causes (schema version 1)', SLOW, () => {
  const cleanup = new Cleanup();
  let dir: string;

  beforeEach(() => {
    dir = scratchDir('flotilla-it-rev-');
  });

  afterEach(() => cleanup.run());

  it('is upgraded on start, and its revisions show in the history without a cause', async () => {
    const valid = validateAppSpec(webSpec('1.0'));
    if (!valid.ok) throw new Error(JSON.stringify(valid.issues));
    const spec = valid.value;

    // The file as the first released hub left it: migration 1 only.
    const file = join(dir, 'hub.db');
    const old = new Database(file);
    old.exec(MIGRATIONS[0]!);
    old.pragma('user_version = 1');
    const at = '2026-01-01T00:00:00.000Z';
    old.prepare('INSERT INTO apps (name, revision, created_at, updated_at) VALUES (?, 1, ?, ?)').run('web', at, at);
    old
      .prepare('INSERT INTO app_revisions (app, revision, spec, spec_hash, created_at) VALUES (?, 1, ?, ?, ?)')
      .run('web', JSON.stringify(spec), contentHash(spec), at);
    old.close();

    const hub: TestHub = cleanup.add('hub', () => hub.close(), await startTestHub({ dataDir: dir }));
    const flotilla = (...args: string[]) => runCli(args, { env: { FLOTILLA_HUB: hub.httpUrl } });

    const before = await http<AppHistory>(hub.httpUrl, 'GET', '/api/v1/apps/web/revisions');
    expect(before.body).toEqual({
      name: 'web',
      current: 1,
      items: [{ revision: 1, createdAt: at, specHash: contentHash(spec), images: [image('1.0')], current: true }],
    });
    const table = await flotilla('rollout', 'history', 'web');
    expect(table.code).toBe(0);
    expect(table.stdout.trimEnd().split('\n')[1]).toMatch(/^1\* +\d+[smhdy] +registry\.local\/web:1\.0 +<none> +<none>$/);

    // New revisions on the upgraded file record their cause; the old one keeps none.
    expect((await http(hub.httpUrl, 'POST', '/api/v1/apps', webSpec('2.0'))).body).toMatchObject({ revision: 2, changed: true });
    expect(await flotilla('rollback', 'web')).toMatchObject({ code: 0, stdout: 'app/web rolled back to revision 1 (now revision 3)\n' });
    const after = await http<AppHistory>(hub.httpUrl, 'GET', '/api/v1/apps/web/revisions');
    expect(after.body.items.map((r) => [r.revision, r.cause ?? null])).toEqual([
      [3, 'rollback to 1'],
      [2, 'apply'],
      [1, null],
    ]);
    await hub.close();

    const check = new Database(file, { readonly: true });
    cleanup.add('check db', () => check.open && check.close());
    expect(check.pragma('user_version', { simple: true })).toBe(MIGRATIONS.length);
  });
});
