/**
 * Secrets at rest on a real hub and real SQLite files: the value reaches the
 * device's desired document, while hub.db and hub.db-wal never hold it in
 * plain bytes (nor its base64); a wrong key stops the hub with a clear error;
 * plain rows an older hub wrote are sealed at start and leave no trace.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { openDatabase } from '../../broker/store/sqlite/db.js';
import { type DesiredState, Topics } from '../../shared/index.js';
import { Cleanup } from '../support/cleanup.js';
import { deviceState } from '../support/fixtures.js';
import { http } from '../support/http.js';
import { startTestHub, type TestHub } from '../support/hub.js';
import { closeClient, connectClient, Inbox } from '../support/mqtt-client.js';
import { runCli } from '../support/processes.js';
import { scratchDir } from '../support/scratch.js';

const topics = new Topics('flotilla/v1');
const ENV_VALUE = `env-${randomBytes(12).toString('hex')}`;
// Not UTF-8 on purpose: a key file's bytes, delivered as a file.
const FILE_VALUE = Buffer.concat([Buffer.from('file-'), randomBytes(24), Buffer.from([0xff, 0xfe, 0x00])]);

function app(name: string) {
  return {
    name,
    scheduling: { selectors: { site: 'roof' } },
    spec: {
      containers: [
        {
          name: 'web',
          image: 'registry.local/web:1',
          env: [{ name: 'TOKEN', fromSecret: 'api-token' }],
          secrets: [{ name: 'tls-key' }, { name: 'api-token', path: '/etc/web/token' }],
        },
      ],
    },
  };
}

/** Every way a value could sit in the file: raw, as JSON text, as base64. */
function plainForms(value: Buffer): Buffer[] {
  const forms = [value, Buffer.from(value.toString('base64'))];
  // The longest run of printable bytes too: a binary value's text part must not show either.
  const printable = value.toString('latin1').match(/[ -~]{8,}/g) ?? [];
  return [...forms, ...printable.map((s) => Buffer.from(s, 'latin1'))];
}

function expectNotOnDisk(dataDir: string, values: Buffer[]): void {
  for (const file of ['hub.db', 'hub.db-wal']) {
    const path = join(dataDir, file);
    if (!existsSync(path)) continue;
    const bytes = readFileSync(path);
    for (const value of values)
      for (const form of plainForms(value)) expect(bytes.includes(form), `${file} holds ${form.toString('latin1')}`).toBe(false);
  }
}

describe('secrets at rest', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  async function hubOn(dataDir?: string): Promise<TestHub> {
    const hub = await startTestHub({ ...(dataDir ? { dataDir } : {}), logLevel: 'debug' });
    cleanup.add('hub', () => hub.close());
    return hub;
  }

  async function device(hub: TestHub, id: string, labels = { site: 'roof' }): Promise<{ client: MqttClient; inbox: Inbox }> {
    const client = await connectClient(hub.mqttUrl, { clientId: id });
    cleanup.add('device client', () => closeClient(client));
    const inbox = new Inbox(client);
    await client.subscribeAsync(topics.device(id, 'desired'), { qos: 1 });
    await client.publishAsync(topics.device(id, 'state'), JSON.stringify(deviceState(id, { labels })), { qos: 1, retain: true });
    return { client, inbox };
  }

  it('delivers the values in the desired document, keeps them sealed on disk, and refuses a wrong key', async () => {
    let hub = await hubOn();
    const dataDir = hub.dataDir;
    expect(statSync(join(dataDir, 'secrets.key')).mode & 0o777).toBe(0o600);

    expect((await http(hub.httpUrl, 'PUT', '/api/v1/secrets/api-token', { value: ENV_VALUE })).status).toBe(200);
    const put = await http(hub.httpUrl, 'PUT', '/api/v1/secrets/tls-key', { valueBase64: FILE_VALUE.toString('base64') });
    expect(put.status).toBe(200);
    expect(JSON.stringify(put.body)).not.toContain(FILE_VALUE.toString('base64'));
    expect((await http(hub.httpUrl, 'POST', '/api/v1/apps', app('web'))).status).toBe(200);

    const { inbox } = await device(hub, 'dev-1');
    const desired = await inbox.waitFor<DesiredState>(topics.device('dev-1', 'desired'), (d) => d.apps.length === 1);
    const container = desired.apps[0]!.containers[0]!;
    expect(container.env).toEqual([{ name: 'TOKEN', value: ENV_VALUE }]);
    expect(container.secrets).toEqual([
      { name: 'tls-key', data: FILE_VALUE.toString('base64') },
      { name: 'api-token', path: '/etc/web/token', data: Buffer.from(ENV_VALUE).toString('base64') },
    ]);

    // A device that runs no app using them gets a desired document without them.
    const other = await device(hub, 'dev-2', { site: 'cellar' });
    const elsewhere = await other.inbox.waitFor<DesiredState>(topics.device('dev-2', 'desired'));
    expect(elsewhere.apps).toEqual([]);
    for (const form of [...plainForms(FILE_VALUE), ...plainForms(Buffer.from(ENV_VALUE))]) {
      expect(other.inbox.messages.some((m) => m.payload.includes(form))).toBe(false);
    }

    // Names and times only, over the API; nothing in the logs.
    const list = await http(hub.httpUrl, 'GET', '/api/v1/secrets');
    expect(list.body.items.map((s: { name: string }) => s.name)).toEqual(['api-token', 'tls-key']);
    const shown = JSON.stringify([list.body, (await http(hub.httpUrl, 'GET', '/api/v1/apps/web')).body, hub.logs.records]);
    for (const form of [...plainForms(FILE_VALUE), ...plainForms(Buffer.from(ENV_VALUE))])
      expect(shown).not.toContain(form.toString('latin1'));

    expectNotOnDisk(dataDir, [Buffer.from(ENV_VALUE), FILE_VALUE]);
    await hub.close();
    expectNotOnDisk(dataDir, [Buffer.from(ENV_VALUE), FILE_VALUE]);

    await expect(hub.restart({ deps: { secretsKey: randomBytes(32).toString('base64') } })).rejects.toThrow(
      /the secrets key does not open secret "api-token": it is not the key this hub's data was sealed with \(key from FLOTILLA_SECRETS_KEY/,
    );

    // The same through `flotilla server`: exit 1 and the reason on stderr, the key nowhere.
    const wrongKey = randomBytes(32).toString('base64');
    const server = await runCli(['server', '--data-dir', dataDir, '--mqtt-port', '0', '--ws-port', '0', '--http-port', '0'], {
      env: { FLOTILLA_SECRETS_KEY: wrongKey },
    });
    expect(server.code).toBe(1);
    expect(server.stderr).toContain('error: the secrets key does not open secret "api-token"');
    expect(server.stdout + server.stderr).not.toContain(wrongKey);

    // The right key again: the stored desired document opens and is republished.
    hub = await hub.restart();
    cleanup.add('restarted hub', () => hub.close());
    const again = await device(hub, 'dev-1');
    const republished = await again.inbox.waitFor<DesiredState>(topics.device('dev-1', 'desired'), (d) => d.apps.length === 1);
    expect(republished.apps[0]!.containers[0]!.env).toEqual([{ name: 'TOKEN', value: ENV_VALUE }]);
  });

  it('refuses a binary secret where an env value needs text, naming the field', async () => {
    const hub = await hubOn();
    await http(hub.httpUrl, 'PUT', '/api/v1/secrets/api-token', { valueBase64: FILE_VALUE.toString('base64') });
    await http(hub.httpUrl, 'PUT', '/api/v1/secrets/tls-key', { value: 'x' });
    const res = await http(hub.httpUrl, 'POST', '/api/v1/apps', app('web'));
    expect(res.status).toBe(400);
    expect(JSON.stringify(res.body)).toContain('spec.containers[0].env[0].fromSecret');
    expect(JSON.stringify(res.body)).toContain('is not UTF-8 text');
    // And the other way round: an app in use keeps its text secret text.
    await http(hub.httpUrl, 'PUT', '/api/v1/secrets/api-token', { value: 'text' });
    expect((await http(hub.httpUrl, 'POST', '/api/v1/apps', app('web'))).status).toBe(200);
    const binary = await http(hub.httpUrl, 'PUT', '/api/v1/secrets/api-token', { valueBase64: FILE_VALUE.toString('base64') });
    expect(binary.status).toBe(400);
    expect((await http(hub.httpUrl, 'DELETE', '/api/v1/secrets/tls-key')).status).toBe(400);
  });

  it('seals the plain rows an older hub wrote, and no plain byte of them is left', async () => {
    const dataDir = scratchDir('flotilla-it-secrets-');
    const legacy = `legacy-${randomBytes(12).toString('hex')}`;
    const doc = {
      deviceId: 'dev-1',
      revision: 3,
      issuedAt: '2026-01-01T00:00:00.000Z',
      apps: [
        { name: 'web', revision: 1, containers: [{ name: 'web', image: 'registry.local/web:1', env: [{ name: 'T', value: legacy }] }] },
      ],
    };
    const db = openDatabase(join(dataDir, 'hub.db'));
    db.prepare("INSERT INTO secrets (name, value, updated_at) VALUES ('api-token', ?, '2026-01-01T00:00:00Z')").run(legacy);
    db.prepare(
      "INSERT INTO devices (id, created_at, desired_revision, desired_hash, desired_doc) VALUES ('dev-1', '2026-01-01', 3, 'h', ?)",
    ).run(JSON.stringify(doc));
    db.close();
    expect(readFileSync(join(dataDir, 'hub.db')).includes(legacy)).toBe(true);

    const hub = await hubOn(dataDir);
    expect(hub.logs.records.some((r) => r.msg?.includes('sealed secret values and desired documents'))).toBe(true);
    expectNotOnDisk(dataDir, [Buffer.from(legacy)]);
    const check = openDatabase(join(dataDir, 'hub.db'));
    cleanup.add('check db', () => check.close());
    expect(check.prepare('SELECT typeof(value) AS v FROM secrets').all()).toEqual([{ v: 'blob' }]);
    expect(check.prepare('SELECT typeof(desired_doc) AS d, typeof(desired_hash) AS h FROM devices').all()).toEqual([
      { d: 'blob', h: 'blob' },
    ]);
    // Still usable: the sealed value resolves, the sealed document was republished.
    const watcher = await connectClient(hub.mqttUrl);
    cleanup.add('watcher', () => closeClient(watcher));
    const inbox = new Inbox(watcher);
    await watcher.subscribeAsync(topics.device('dev-1', 'desired'), { qos: 1 });
    const restored = await inbox.waitFor<DesiredState>(topics.device('dev-1', 'desired'));
    expect(restored.apps[0]!.containers[0]!.env).toEqual([{ name: 'T', value: legacy }]);
    await hub.close();
    expectNotOnDisk(dataDir, [Buffer.from(legacy)]);
  });
});
