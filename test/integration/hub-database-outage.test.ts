/**
 * A hub on PostgreSQL (`flotilla server --database …`, a real process) whose database goes away
 * while it runs: the API answers 503 'unavailable' instead of failing inside, MQTT sessions stay
 * up and keep relaying, the hub does not exit, and once the database is back the same hub answers
 * again without a restart, having said what it waited for.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { List } from '../../shared/index.js';
import { Cleanup } from '../support/cleanup.js';
import { http } from '../support/http.js';
import { closeClient, connectClient } from '../support/mqtt-client.js';
import { startPostgres } from '../support/postgres.js';
import { removeDir, scratchDir, startHubProcess } from '../support/processes.js';
import { waitFor } from '../support/wait.js';

describe('a hub that loses its database', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('answers 503 and keeps MQTT sessions while PostgreSQL is down, and recovers by itself', { timeout: 90_000 }, async () => {
    const postgres = await startPostgres();
    cleanup.add('postgres', () => postgres.close());
    const database = await postgres.createDatabase('outage');
    const hub = await startHubProcess(scratchDir('flotilla-outage-'), ['--database', database]);
    cleanup.add('hub', () => hub.proc.stop());
    cleanup.add('hub data', () => removeDir(hub.dataDir));
    const app = {
      name: 'web',
      scheduling: { selectors: { zone: 'a' } },
      spec: { containers: [{ name: 'web', image: 'registry.local/web:1' }] },
    };
    expect((await http(hub.url, 'POST', '/api/v1/apps', app)).status).toBe(200);

    const watcher = await connectClient(hub.mqttUrl, { clientId: 'outage-watcher' });
    cleanup.add('mqtt client', () => closeClient(watcher));
    const heard: string[] = [];
    watcher.on('message', (_topic, payload) => heard.push(payload.toString()));
    await watcher.subscribeAsync('flotilla/v1/devices/+/events');

    await postgres.stop();
    const down = await http(hub.url, 'GET', '/api/v1/apps');
    expect(down.status).toBe(503);
    expect(down.body).toMatchObject({ error: { code: 'unavailable' } });
    // MQTT needs no database: the session stays and messages still flow through the broker.
    await watcher.publishAsync('flotilla/v1/devices/outage-watcher/events', 'while the database is down');
    await waitFor('the message relayed while the database is down', async () => heard.includes('while the database is down'));
    expect(watcher.connected).toBe(true);
    expect(hub.proc.running).toBe(true);

    await postgres.start();
    await waitFor('the API answering again', async () => (await http(hub.url, 'GET', '/api/v1/apps')).status === 200, {
      timeoutMs: 30_000,
    });
    const apps = (await http(hub.url, 'GET', '/api/v1/apps')).body as List<{ name: string }>;
    expect(apps.items.map((a) => a.name)).toEqual(['web']);
    expect(hub.proc.output).toContain('PostgreSQL is unavailable');
    expect(hub.proc.output).toMatch(/"waitedMs":\d+.*PostgreSQL is back/);
    expect(watcher.connected).toBe(true);
  });
});
