/**
 * The MQTT request/response API as a backend service uses it: a plain mqtt.js
 * client that knows only the topic names and the JSON envelopes, against a real
 * hub (Aedes, dispatcher, SQLite).
 */
import type { MqttClient } from 'mqtt';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Cleanup } from '../support/cleanup.js';
import { appSpec } from '../support/fixtures.js';
import { startTestHub, type TestHub } from '../support/hub.js';
import { closeClient, connectClient, Inbox } from '../support/mqtt-client.js';

const REQUEST = 'flotilla/v1/api/svc-1/request';
const RESPONSE = 'flotilla/v1/api/svc-1/response';

interface Response {
  correlationId: string | null;
  ok: boolean;
  result?: any;
  error?: { code: string; message: string; details?: any };
}

describe('MQTT request/response API', () => {
  const cleanup = new Cleanup();
  let hub: TestHub;
  let service: MqttClient;
  let inbox: Inbox;
  let seq = 0;

  beforeEach(async () => {
    hub = cleanup.add('hub', () => hub.close(), await startTestHub());
    service = cleanup.add('service client', () => closeClient(service), await connectClient(hub.mqttUrl, { clientId: 'svc-1' }));
    inbox = new Inbox(service);
    await service.subscribeAsync(RESPONSE, { qos: 1 });
  });

  afterEach(() => cleanup.run());

  /** Publishes a request and waits for the response that carries its correlation id. */
  async function call(method: string, params?: Record<string, unknown>): Promise<Response> {
    seq += 1;
    const correlationId = `req-${seq}`;
    await service.publishAsync(REQUEST, JSON.stringify({ correlationId, method, ...(params ? { params } : {}) }), { qos: 1 });
    return inbox.waitFor<Response>(RESPONSE, (r) => r.correlationId === correlationId);
  }

  it('applies an app: revision 1 and changed, then unchanged on re-apply; list and get show it', async () => {
    const spec = appSpec('sensor-gateway');

    const first = await call('apps.apply', { spec });
    expect(first).toEqual({ correlationId: 'req-1', ok: true, result: { name: 'sensor-gateway', revision: 1, changed: true } });

    const again = await call('apps.apply', { spec });
    expect(again.ok).toBe(true);
    expect(again.result).toEqual({ name: 'sensor-gateway', revision: 1, changed: false });

    const list = await call('apps.list');
    expect(list.ok).toBe(true);
    expect(list.result.items).toHaveLength(1);
    expect(list.result.items[0]).toMatchObject({
      name: 'sensor-gateway',
      revision: 1,
      scheduling: { selectors: { site: 'roof' } },
      containers: 1,
      devices: { matched: 0, running: 0 },
    });

    const got = await call('apps.get', { name: 'sensor-gateway' });
    expect(got.ok).toBe(true);
    expect(got.result).toMatchObject({ name: 'sensor-gateway', revision: 1, spec, devices: [] });

    const changed = await call('apps.apply', {
      spec: { ...spec, spec: { containers: [{ name: 'gateway', image: 'registry.local/sensor-gateway:1.5.0' }] } },
    });
    expect(changed.result).toEqual({ name: 'sensor-gateway', revision: 2, changed: true });
    expect((await call('apps.get', { name: 'sensor-gateway' })).result.spec.spec.containers[0].image).toBe(
      'registry.local/sensor-gateway:1.5.0',
    );
  });

  it('refuses an invalid spec with invalid_spec and the path of the bad field', async () => {
    const spec = appSpec('bad-ports');
    spec.spec.containers[0]!.ports = ['8080:80', 'eighty'];

    const response = await call('apps.apply', { spec });

    expect(response.ok).toBe(false);
    expect(response.correlationId).toBe(`req-${seq}`);
    expect(response.error?.code).toBe('invalid_spec');
    expect(response.error?.message).toContain('spec.containers[0].ports[1]');
    expect(response.error?.details.issues).toContainEqual({
      path: 'spec.containers[0].ports[1]',
      message: expect.stringContaining('must match'),
    });
    // Nothing was stored.
    expect((await call('apps.list')).result.items).toEqual([]);
  });

  it('answers an unknown method with unknown_method, and a missing app with not_found', async () => {
    const unknown = await call('apps.explode', {});
    expect(unknown).toMatchObject({ ok: false, error: { code: 'unknown_method', message: expect.stringContaining('apps.explode') } });

    const missing = await call('apps.get', { name: 'nope' });
    expect(missing).toMatchObject({ ok: false, error: { code: 'not_found' } });

    const badParams = await call('apps.get', { name: 'Not_A_Name' });
    expect(badParams.error?.code).toBe('invalid_request');
    expect(badParams.error?.details.issues.map((i: { path: string }) => i.path)).toContain('name');
  });

  it('logs and answers malformed and wrong-shaped requests, and keeps serving', async () => {
    await service.publishAsync(REQUEST, '{"correlationId": "broken", ', { qos: 1 });
    const malformed = await inbox.waitFor<Response>(RESPONSE, (r) => r.correlationId === null);
    expect(malformed.ok).toBe(false);
    expect(malformed.error?.code).toBe('invalid_request');
    expect(malformed.error?.message).toMatch(/not valid JSON/);
    const malformedLog = await hub.logs.waitFor('invalid API request', (r) => r.clientId === 'svc-1');
    expect(malformedLog.reason).toMatch(/not valid JSON/);

    await service.publishAsync(REQUEST, JSON.stringify({ correlationId: 'shape', method: 42, extra: true }), { qos: 1 });
    const wrongShape = await inbox.waitFor<Response>(RESPONSE, (r) => r.correlationId === 'shape');
    expect(wrongShape.error?.code).toBe('invalid_request');
    const paths = wrongShape.error?.details.issues.map((i: { path: string }) => i.path);
    expect(paths).toEqual(expect.arrayContaining(['method', 'extra']));
    const shapeLog = await hub.logs.waitFor('invalid API request', () => true, 2);
    expect(shapeLog.reason).toMatch(/method: must be string/);

    // The hub is still serving.
    const after = await call('apps.apply', { spec: appSpec('still-alive') });
    expect(after).toMatchObject({ ok: true, result: { name: 'still-alive', revision: 1, changed: true } });
  });

  it('answers a request over 768 KiB with invalid_request naming the limit, stores none of it, and keeps serving', async () => {
    // 800 specs of ~1.1 KiB: a set that fits the hub's 1 MiB packet cap but not the API request's 768 KiB.
    const specs = Array.from({ length: 800 }, (_, i) => {
      const spec = appSpec(`big-${i}`);
      spec.spec.containers[0]?.env.push({ name: 'PADDING', value: 'x'.repeat(1_000) });
      return spec;
    });
    const request = JSON.stringify({ correlationId: 'too-big', method: 'apps.applyAll', params: { specs } });
    expect(request.length).toBeGreaterThan(768 * 1024);
    await service.publishAsync(REQUEST, request, { qos: 1 });
    const refused = await inbox.waitFor<Response>(RESPONSE, (r) => r.correlationId === 'too-big');
    expect(refused.ok).toBe(false);
    expect(refused.error?.code).toBe('invalid_request');
    expect(refused.error?.message).toBe(
      `request is ${request.length} bytes; an MQTT API request may be at most 786432 bytes (768 KiB): send a larger one over HTTP (a set of apps: POST /api/v1/apply, up to 8 MiB)`,
    );
    expect((await call('apps.list')).result.items).toEqual([]);
    const fits = await call('apps.applyAll', { specs: specs.slice(0, 10) });
    expect(fits.ok).toBe(true);
    expect((await call('apps.list')).result.items).toHaveLength(10);
  });

  it('answers concurrent requests each under its own correlation id', async () => {
    const specs = ['app-a', 'app-b', 'app-c'].map((name) => appSpec(name));
    await Promise.all(
      specs.map((spec) =>
        service.publishAsync(REQUEST, JSON.stringify({ correlationId: `c-${spec.name}`, method: 'apps.apply', params: { spec } }), {
          qos: 1,
        }),
      ),
    );
    await service.publishAsync(REQUEST, JSON.stringify({ correlationId: 'c-list', method: 'apps.list' }), { qos: 1 });

    for (const spec of specs) {
      const response = await inbox.waitFor<Response>(RESPONSE, (r) => r.correlationId === `c-${spec.name}`);
      expect(response).toEqual({ correlationId: `c-${spec.name}`, ok: true, result: { name: spec.name, revision: 1, changed: true } });
    }
    const list = await inbox.waitFor<Response>(RESPONSE, (r) => r.correlationId === 'c-list');
    expect(list.result.items.map((a: { name: string }) => a.name)).toEqual(['app-a', 'app-b', 'app-c']);
    // One response per request, no strays.
    expect(inbox.on(RESPONSE)).toHaveLength(4);
  });

  it("answers on the response topic of the client that asked, not on anyone else's", async () => {
    const other: MqttClient = cleanup.add(
      'other client',
      () => closeClient(other),
      await connectClient(hub.mqttUrl, { clientId: 'svc-2' }),
    );
    const otherInbox = new Inbox(other);
    await other.subscribeAsync('flotilla/v1/api/svc-2/response', { qos: 1 });
    await other.publishAsync('flotilla/v1/api/svc-2/request', JSON.stringify({ correlationId: 'from-2', method: 'devices.list' }), {
      qos: 1,
    });
    expect(await otherInbox.waitFor<Response>('flotilla/v1/api/svc-2/response', (r) => r.correlationId === 'from-2')).toEqual({
      correlationId: 'from-2',
      ok: true,
      result: { items: [] },
    });
    // svc-2's answer has been delivered; svc-1's inbox holds only the answer to its own later call.
    await call('devices.list');
    expect(inbox.on(RESPONSE).map((m) => (m.json as Response).correlationId)).toEqual([`req-${seq}`]);
  });
});
