/**
 * `GET /api/v1/whoami`, what the web console asks at login: the name and
 * role behind a key, for every role; a wrong key or a device's secret is
 * refused like any other API call; a hub allowing anonymous clients says so.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { adminKey, bearer, createAccount, registerDevice } from '../support/auth.js';
import { Cleanup } from '../support/cleanup.js';
import { http } from '../support/http.js';
import { startTestHub } from '../support/hub.js';

describe('GET /api/v1/whoami', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('names the account and role behind each key, and refuses what is not an account’s key', async () => {
    const hub = await startTestHub({ config: { allowAnonymous: false } });
    cleanup.add('hub', () => hub.close());
    const whoami = (headers: Record<string, string>) => http(hub.httpUrl, 'GET', '/api/v1/whoami', undefined, headers);

    expect(await whoami(bearer(adminKey(hub)))).toMatchObject({ status: 200, body: { name: 'admin', role: 'admin' } });
    for (const [name, role] of [
      ['ops', 'viewer'],
      ['ci', 'operator'],
      ['boss', 'admin'],
    ] as const) {
      const key = await createAccount(hub, name, role);
      const res = await whoami(bearer(key));
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ name, role });
    }

    for (const headers of [{}, bearer('ops.wrong')]) {
      const refused = await whoami(headers);
      expect(refused.status).toBe(401);
      expect(refused.body.error.code).toBe('unauthorized');
    }
    const device = await registerDevice(hub, 'dev-1');
    const asDevice = await whoami(bearer(device.secret));
    expect(asDevice.status).toBe(401);
    expect(JSON.stringify(asDevice.body)).not.toContain('dev-1');
  });

  it('answers anonymous (with every role) on a hub that allows anonymous clients', async () => {
    const hub = await startTestHub();
    cleanup.add('hub', () => hub.close());
    expect(await http(hub.httpUrl, 'GET', '/api/v1/whoami')).toMatchObject({ status: 200, body: { name: 'anonymous', role: 'admin' } });
  });
});
