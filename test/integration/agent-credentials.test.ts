/**
 * A real agent (in-process, no container engine reachable) with the
 * credentials registration gave it, against a hub that requires them: it
 * connects, reports, receives its signed desired state and goes offline
 * under the ACL; without its secret, or revoked, it stays out.
 */
import Dockerode from 'dockerode';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startAgent } from '../../agent/agent.js';
import { DockerRuntime } from '../../agent/runtime/docker-runtime.js';
import { adminKey, bearer, registerDevice } from '../support/auth.js';
import { Cleanup } from '../support/cleanup.js';
import { http } from '../support/http.js';
import { startTestHub, type TestHub } from '../support/hub.js';
import { LogCapture } from '../support/logs.js';
import { scratchDir } from '../support/scratch.js';
import { waitFor } from '../support/wait.js';

const NO_ENGINE = '/nonexistent/docker.sock';

describe('an agent with registered credentials', () => {
  const cleanup = new Cleanup();
  let hub: TestHub;

  beforeEach(async () => {
    hub = cleanup.add('hub', () => hub.close(), await startTestHub({ config: { allowAnonymous: false }, logLevel: 'info' }));
  });
  afterEach(() => cleanup.run());

  async function launch(deviceId: string, credentials: { secret?: string; hubKey?: string }) {
    const dataDir = scratchDir('flotilla-it-agent-');
    const logs = new LogCapture('debug');
    const agent = await startAgent(
      { deviceId, hubUrl: hub.mqttUrl, dataDir, logLevel: 'silent', stateIntervalMs: 50, ...credentials },
      { runtime: new DockerRuntime(new Dockerode({ socketPath: NO_ENGINE })), logger: logs.logger },
    );
    cleanup.add('agent', () => agent.close());
    return { agent, logs };
  }

  const deviceView = async (id: string) => (await http(hub.httpUrl, 'GET', `/api/v1/devices/${id}`, undefined, bearer(adminKey(hub)))).body;

  it('connects with its secret, reports its state and gets a desired document, all within its own topics', async () => {
    const { secret, hubKey } = await registerDevice(hub, 'dev-a', { site: 'lab' });
    await launch('dev-a', { secret, hubKey });
    const device = await waitFor('dev-a online with a desired revision', async () => {
      const view = await deviceView('dev-a');
      return view.online === true && view.desiredRevision >= 1 && view;
    });
    expect(device.labels).toMatchObject({ site: 'lab' });
    await hub.logs.waitFor('desired state published', (r) => r.deviceId === 'dev-a');
    // Nothing the agent did broke the ACL (a refused publish would have closed its connection).
    expect(hub.logs.matching('MQTT publish refused')).toEqual([]);
    expect(hub.logs.matching('MQTT subscription refused')).toEqual([]);
  });

  it('stays out without its secret, and once revoked', async () => {
    const { hubKey } = await registerDevice(hub, 'dev-b');
    await launch('dev-b', { hubKey });
    await hub.logs.waitFor('MQTT login refused', (r) => r.clientId === 'dev-b' && r.reason === 'anonymous clients are not allowed');
    expect((await deviceView('dev-b')).online).toBe(false);

    const d = await registerDevice(hub, 'dev-d');
    await launch('dev-d', { secret: d.secret, hubKey: d.hubKey });
    await waitFor('dev-d online', async () => (await deviceView('dev-d')).online === true);
    const revoked = await http(hub.httpUrl, 'POST', '/api/v1/devices/dev-d/revoke', undefined, bearer(adminKey(hub)));
    expect(revoked.body).toMatchObject({ disconnected: true });
    await waitFor('dev-d offline', async () => (await deviceView('dev-d')).online === false);
    // It keeps trying (its reconnect loop) and is refused each time.
    await hub.logs.waitFor('MQTT login refused', (r) => r.clientId === 'dev-d' && r.reason === 'device revoked');
  });
});
