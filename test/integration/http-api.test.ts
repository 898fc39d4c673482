/**
 * The HTTP API as curl or the CLI uses it, against a real hub: YAML and JSON
 * specs, errors that name the offending field, status codes, labels, and
 * secrets that reach a device's desired document (read with a real MQTT client).
 */
import type { MqttClient } from 'mqtt';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DesiredState } from '../../shared/index.js';
import { Cleanup } from '../support/cleanup.js';
import { appSpec, deviceState } from '../support/fixtures.js';
import { http } from '../support/http.js';
import { startTestHub, type TestHub } from '../support/hub.js';
import { closeClient, connectClient, Inbox } from '../support/mqtt-client.js';
import { waitFor } from '../support/wait.js';

const YAML_SPEC = `# a hand-written spec, as an operator keeps it in git
name: sensor-gateway
scheduling:
  selectors: { site: roof, arch: arm64 }
spec:
  containers:
    - name: gateway
      image: registry.local/sensor-gateway:1.4.2
      command: [/app/gateway]
      env: [{ name: LOG_LEVEL, value: info }]
      ports: ["8080:80"]
      volumes: ["gateway-data:/data", "/etc/gateway:/etc/gateway:ro"]
      tmpfs: ["/dev/shm:size=64m"]
      restartPolicy: { name: unless-stopped }
      resources: { memory: 128m, cpus: 0.5 }
      healthcheck: { http: "http://localhost:80/healthz", interval: 5s, timeout: 2s, retries: 3 }
  update: { strategy: download-then-kill, healthTimeout: 60s, rollback: auto }
`;

describe('HTTP API', () => {
  const cleanup = new Cleanup();
  let hub: TestHub;
  const api = (method: string, path: string, body?: unknown, headers?: Record<string, string>) =>
    http(hub.httpUrl, method, path, body, headers);

  beforeEach(async () => {
    hub = cleanup.add('hub', () => hub.close(), await startTestHub({ logLevel: 'info' }));
  });

  afterEach(() => cleanup.run());

  /** A device (plain MQTT client) that reports `labels` and listens to its desired document. */
  async function registerDevice(
    id: string,
    labels: Record<string, string>,
  ): Promise<{ client: MqttClient; inbox: Inbox; desired: string }> {
    const client = await connectClient(hub.mqttUrl, { clientId: id });
    cleanup.add(`device ${id}`, () => closeClient(client));
    const inbox = new Inbox(client);
    const desired = `flotilla/v1/devices/${id}/desired`;
    await client.subscribeAsync(desired, { qos: 1 });
    await client.publishAsync(`flotilla/v1/devices/${id}/state`, JSON.stringify(deviceState(id, { labels })), { qos: 1, retain: true });
    await inbox.waitFor<DesiredState>(desired, (d) => d.revision === 1);
    return { client, inbox, desired };
  }

  it('applies a YAML spec and a JSON spec, and lists and shows them', async () => {
    const yaml = await api('POST', '/api/v1/apps', YAML_SPEC, { 'content-type': 'application/yaml' });
    expect(yaml.status).toBe(200);
    expect(yaml.headers.get('content-type')).toBe('application/json');
    expect(yaml.body).toEqual({ name: 'sensor-gateway', revision: 1, changed: true });

    const json = await api('POST', '/api/v1/apps', appSpec('thermo'));
    expect(json.status).toBe(200);
    expect(json.body).toEqual({ name: 'thermo', revision: 1, changed: true });

    // The same spec again, written in another key order and as JSON, is unchanged.
    const reordered = `
spec:
  update: { rollback: auto, healthTimeout: 60s, strategy: download-then-kill }
  containers:
    - image: registry.local/sensor-gateway:1.4.2
      name: gateway
      ports: ["8080:80"]
      command: [/app/gateway]
      volumes: ["gateway-data:/data", "/etc/gateway:/etc/gateway:ro"]
      env: [{ value: info, name: LOG_LEVEL }]
      tmpfs: ["/dev/shm:size=64m"]
      resources: { cpus: 0.5, memory: 128m }
      restartPolicy: { name: unless-stopped }
      healthcheck: { retries: 3, timeout: 2s, interval: 5s, http: "http://localhost:80/healthz" }
scheduling:
  selectors: { arch: arm64, site: roof }
name: sensor-gateway
`;
    const again = await api('POST', '/api/v1/apps', reordered, { 'content-type': 'application/yaml; charset=utf-8' });
    expect(again.body).toEqual({ name: 'sensor-gateway', revision: 1, changed: false });
    const fromJson = await api('GET', '/api/v1/apps/sensor-gateway');
    const asJson = await api('POST', '/api/v1/apps', fromJson.body.spec);
    expect(asJson.body).toEqual({ name: 'sensor-gateway', revision: 1, changed: false });

    const list = await api('GET', '/api/v1/apps');
    expect(list.status).toBe(200);
    expect(list.body.items.map((a: { name: string; revision: number }) => [a.name, a.revision])).toEqual([
      ['sensor-gateway', 1],
      ['thermo', 1],
    ]);

    const one = await api('GET', '/api/v1/apps/sensor-gateway');
    expect(one.status).toBe(200);
    expect(one.body.spec.spec.containers[0]).toMatchObject({
      name: 'gateway',
      command: ['/app/gateway'],
      resources: { memory: '128m', cpus: 0.5 },
      healthcheck: { http: 'http://localhost:80/healthz', interval: '5s', timeout: '2s', retries: 3 },
    });
    expect(one.body.spec.scheduling).toEqual({ selectors: { site: 'roof', arch: 'arm64' } });

    const deleted = await api('DELETE', '/api/v1/apps/thermo');
    expect(deleted.body).toEqual({ name: 'thermo', deleted: true });
    expect((await api('GET', '/api/v1/apps/thermo')).status).toBe(404);
  });

  it('answers an invalid spec with 400 and issues that name each bad field', async () => {
    const spec = appSpec('bad') as any;
    spec.spec.containers[0].ports = ['8080:80', '99999999:80'];
    spec.spec.containers[0].resources = { memory: 'lots' };
    spec.spec.containers[0].restartPolicy = { name: 'sometimes' };

    const res = await api('POST', '/api/v1/apps', spec);

    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('invalid_spec');
    const paths = res.body.error.details.issues.map((i: { path: string }) => i.path);
    expect(paths).toEqual(
      expect.arrayContaining([
        'spec.containers[0].ports[1]',
        'spec.containers[0].resources.memory',
        'spec.containers[0].restartPolicy.name',
      ]),
    );
    expect(res.body.error.details.issues).toContainEqual({
      path: 'spec.containers[0].restartPolicy.name',
      message: 'must be one of "no", "always", "unless-stopped", "on-failure"',
    });
    expect((await api('GET', '/api/v1/apps')).body.items).toEqual([]);

    // Rules the schema cannot express are reported the same way.
    const twice = appSpec('twice') as any;
    twice.spec.containers.push({ name: 'gateway', image: 'x:1', ports: ['8080:81'] });
    const semantic = await api('POST', '/api/v1/apps', twice);
    expect(semantic.status).toBe(400);
    expect(semantic.body.error.details.issues).toEqual(
      expect.arrayContaining([
        { path: 'spec.containers[1].name', message: 'duplicate container name "gateway"' },
        {
          path: 'spec.containers[1].ports[0]',
          message: expect.stringContaining('host port 8080/tcp is also published by spec.containers[0].ports[0]'),
        },
      ]),
    );
  });

  it('answers a body that does not parse with 400 invalid_request', async () => {
    const notJson = await api('POST', '/api/v1/apps', '{"name": "half', { 'content-type': 'application/json' });
    expect(notJson.status).toBe(400);
    expect(notJson.body.error).toMatchObject({ code: 'invalid_request', message: expect.stringMatching(/not valid JSON/) });

    const notYaml = await api('POST', '/api/v1/apps', 'name: [unclosed', { 'content-type': 'application/yaml' });
    expect(notYaml.status).toBe(400);
    expect(notYaml.body.error).toMatchObject({ code: 'invalid_request', message: expect.stringMatching(/not valid YAML/) });

    const empty = await api('POST', '/api/v1/apps', ' ', { 'content-type': 'application/json' });
    expect(empty.status).toBe(400);
    expect(empty.body.error.message).toMatch(/empty/);

    const arrayBody = await api('PUT', '/api/v1/secrets/token', ['value']);
    expect(arrayBody.status).toBe(400);
    expect(arrayBody.body.error).toMatchObject({ code: 'invalid_request', message: 'request body must be a JSON object' });
  });

  it('answers 404 for unknown apps, devices and routes, and 405 with Allow for a wrong method', async () => {
    const app = await api('GET', '/api/v1/apps/ghost');
    expect(app.status).toBe(404);
    expect(app.body.error).toEqual({ code: 'not_found', message: 'app "ghost" not found' });

    expect((await api('DELETE', '/api/v1/apps/ghost')).status).toBe(404);
    expect((await api('GET', '/api/v1/devices/ghost')).status).toBe(404);
    expect((await api('GET', '/api/v2/whatever')).status).toBe(404);

    const wrong = await api('PUT', '/api/v1/apps', appSpec('x'));
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get('allow')).toBe('GET, POST');
    expect(wrong.body.error.code).toBe('method_not_allowed');
    // Nothing was applied by the refused request.
    expect((await api('GET', '/api/v1/apps')).body.items).toEqual([]);

    expect((await api('GET', '/healthz')).body).toEqual({ ok: true });
  });

  it('answers a malformed percent-escape in the path as a client error, not a server error', async () => {
    const res = await api('GET', '/api/v1/apps/%E0%A4%A');
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('invalid_request');
    // A well-formed escape is decoded before the name is checked.
    const escaped = await api('GET', '/api/v1/apps/sensor%2Dgateway');
    expect(escaped.status).toBe(404);
    expect(escaped.body.error.message).toBe('app "sensor-gateway" not found');
    expect(hub.logs.matching('HTTP request failed')).toEqual([]);
  });

  it('patches labels, refuses a bad label key with 400, and schedules by the result', async () => {
    const device = await registerDevice('dev-l', { site: 'attic' });

    const bad = await api('PATCH', '/api/v1/devices/dev-l/labels', { set: { 'not a key!': 'x' } });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('invalid_request');
    expect(bad.body.error.details.issues).toContainEqual({ path: 'set["not a key!"]', message: 'is not a known field' });
    const badValue = await api('PATCH', '/api/v1/devices/dev-l/labels', { set: { site: 'has spaces' } });
    expect(badValue.status).toBe(400);
    expect(badValue.body.error.details.issues.map((i: { path: string }) => i.path)).toEqual(['set.site']);
    expect((await api('GET', '/api/v1/devices/dev-l')).body.labels).toEqual({ site: 'attic' });

    await api('POST', '/api/v1/apps', appSpec('roof-app', { site: 'roof', tier: 'edge' }));
    const ok = await api('PATCH', '/api/v1/devices/dev-l/labels', { set: { site: 'roof', tier: 'edge' } });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ id: 'dev-l', labels: { site: 'roof', tier: 'edge' }, reportedLabels: { site: 'attic' } });
    const withApp = await device.inbox.waitFor<DesiredState>(device.desired, (d) => d.apps.some((a) => a.name === 'roof-app'));
    expect(withApp.revision).toBe(2);

    const removed = await api('PATCH', '/api/v1/devices/dev-l/labels', { remove: ['tier'] });
    expect(removed.body.labels).toEqual({ site: 'roof' });
    expect((await device.inbox.waitFor<DesiredState>(device.desired, (d) => d.revision === 3)).apps).toEqual([]);

    // Removing a label the device itself reports sticks, even as the device keeps reporting it.
    const unsited = await api('PATCH', '/api/v1/devices/dev-l/labels', { remove: ['site'] });
    expect(unsited.status).toBe(200);
    expect(unsited.body.labels).toEqual({});
    await device.client.publishAsync(
      'flotilla/v1/devices/dev-l/state',
      JSON.stringify(deviceState('dev-l', { labels: { site: 'attic' }, observedRevision: 3 })),
      { qos: 1, retain: true },
    );
    const reReported = await waitFor('dev-l re-reported', async () => {
      const r = await api('GET', '/api/v1/devices/dev-l');
      return r.body.observedRevision === 3 && r.body;
    });
    expect(reReported.labels).toEqual({});
    expect(reReported.reportedLabels).toEqual({ site: 'attic' });
    // Setting it again replaces the tombstone.
    expect((await api('PATCH', '/api/v1/devices/dev-l/labels', { set: { site: 'roof' } })).body.labels).toEqual({ site: 'roof' });

    expect((await api('PATCH', '/api/v1/devices/nobody/labels', { set: { a: 'b' } })).status).toBe(404);
  });

  it('resolves secrets into the desired document and guards secrets in use', async () => {
    const device = await registerDevice('dev-s', { site: 'roof' });
    const spec = appSpec('uses-secret') as any;
    spec.spec.containers[0].env = [{ name: 'TOKEN', fromSecret: 'gw-token' }];
    spec.spec.containers[0].auth = { username: 'ci', fromSecret: 'registry-password' };

    const missing = await api('POST', '/api/v1/apps', spec);
    expect(missing.status).toBe(400);
    expect(missing.body.error.code).toBe('invalid_spec');
    // Every missing secret at once, each at the field naming it.
    expect(missing.body.error.details.issues).toEqual([
      { path: 'spec.containers[0].env[0].fromSecret', message: 'secret "gw-token" does not exist' },
      { path: 'spec.containers[0].auth.fromSecret', message: 'secret "registry-password" does not exist' },
    ]);

    expect((await api('PUT', '/api/v1/secrets/gw-token', { value: 's3cr3t-token' })).body).toEqual({ name: 'gw-token' });
    const stillMissing = await api('POST', '/api/v1/apps', spec);
    expect(stillMissing.body.error.details.issues).toEqual([
      { path: 'spec.containers[0].auth.fromSecret', message: 'secret "registry-password" does not exist' },
    ]);
    await api('PUT', '/api/v1/secrets/registry-password', { value: 'hunter2' });

    const applied = await api('POST', '/api/v1/apps', spec);
    expect(applied.status).toBe(200);
    expect(applied.body).toEqual({ name: 'uses-secret', revision: 1, changed: true });

    const desired = await device.inbox.waitFor<DesiredState>(device.desired, (d) => d.apps.length === 1);
    expect(desired.apps[0]!.containers[0]!.env).toEqual([{ name: 'TOKEN', value: 's3cr3t-token' }]);
    expect(desired.apps[0]!.containers[0]!.auth).toEqual({ username: 'ci', password: 'hunter2' });

    // Values never come back out over the API: names only.
    const list = await api('GET', '/api/v1/secrets');
    expect(list.body.items.map((s: { name: string }) => s.name)).toEqual(['gw-token', 'registry-password']);
    expect(JSON.stringify(list.body)).not.toContain('s3cr3t');
    expect(JSON.stringify((await api('GET', '/api/v1/apps/uses-secret')).body)).not.toContain('s3cr3t');

    // Rotating a secret re-issues the desired document with the new value.
    await api('PUT', '/api/v1/secrets/gw-token', { value: 'rotated' });
    const rotated = await device.inbox.waitFor<DesiredState>(
      device.desired,
      (d) => d.apps[0]?.containers[0]?.env?.[0]?.value === 'rotated',
    );
    expect(rotated.revision).toBe(desired.revision + 1);

    const inUse = await api('DELETE', '/api/v1/secrets/gw-token');
    expect(inUse.status).toBe(400);
    expect(inUse.body.error).toMatchObject({ code: 'invalid_request', message: 'secret "gw-token" is used by app "uses-secret"' });
    expect((await api('GET', '/api/v1/secrets')).body.items).toHaveLength(2);

    const authInUse = await api('DELETE', '/api/v1/secrets/registry-password');
    expect(authInUse.status).toBe(400);
    expect(authInUse.body.error.message).toBe('secret "registry-password" is used by app "uses-secret"');

    await api('DELETE', '/api/v1/apps/uses-secret');
    expect((await api('DELETE', '/api/v1/secrets/gw-token')).body).toEqual({ name: 'gw-token', deleted: true });
    expect((await api('DELETE', '/api/v1/secrets/gw-token')).status).toBe(404);
  });
});
