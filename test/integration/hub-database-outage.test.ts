/**
 * A hub on PostgreSQL (`flotilla server --database …`, a real process) whose database goes away
 * while it runs: the API answers 503 'unavailable' instead of failing inside, MQTT sessions stay
 * up and keep relaying, the hub does not exit, and once the database is back the same hub answers
 * again without a restart, having said what it waited for. A device that logs in meanwhile is
 * told to come back (CONNACK 3, "server unavailable"), never that its credentials are bad, and
 * the agent's own link says it is waiting, not that it must be registered again.
 */
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { Link } from '../../agent/link.js';
import { type List, Topics } from '../../shared/index.js';
import { Cleanup } from '../support/cleanup.js';
import { http } from '../support/http.js';
import { LogCapture } from '../support/logs.js';
import { closeClient, connectClient } from '../support/mqtt-client.js';
import { startPostgres } from '../support/postgres.js';
import { type HubProcess, removeDir, scratchDir, startHubProcess } from '../support/processes.js';
import { waitFor } from '../support/wait.js';

describe('a hub that loses its database', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  /** The agent's own MQTT link as device `outage-dev`, its logs captured, reconnecting every `baseMs` to twice that. */
  function agentLink(hub: HubProcess, secret: string, baseMs: number): { link: Link; agentLogs: LogCapture } {
    const agentLogs = new LogCapture('debug');
    const link = new Link({
      hubUrl: hub.mqttUrl,
      deviceId: 'outage-dev',
      secret,
      topics: new Topics(),
      logger: agentLogs.logger,
      onDesired: () => undefined,
      stateIntervalMs: 0,
      reconnect: { baseMs, maxMs: 2 * baseMs },
    });
    cleanup.add('agent link', () => link.close());
    return { link, agentLogs };
  }
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

  /** The CONNACK return code a plain MQTT 3.1.1 client gets for these credentials, or 0 once it is in. */
  async function connackCode(mqttUrl: string, username: string, password: string): Promise<number> {
    const client = mqtt.connect(mqttUrl, { protocolVersion: 4, clientId: username, username, password, reconnectPeriod: 0 });
    try {
      return await new Promise<number>((resolve, reject) => {
        client.once('connect', () => resolve(0));
        client.once('error', (err: Error & { code?: unknown }) => (typeof err.code === 'number' ? resolve(err.code) : reject(err)));
      });
    } finally {
      await client.endAsync(true);
    }
  }

  it('tells a device logging in while PostgreSQL is down to come back, not that it is refused', { timeout: 90_000 }, async () => {
    const postgres = await startPostgres();
    cleanup.add('postgres', () => postgres.close());
    const hub = await startHubProcess(scratchDir('flotilla-outage-'), ['--database', await postgres.createDatabase('logins')]);
    cleanup.add('hub', () => hub.proc.stop());
    cleanup.add('hub data', () => removeDir(hub.dataDir));
    const token = (await http(hub.url, 'POST', '/api/v1/tokens', {})).body.token as string;
    const registered = await http(hub.url, 'POST', '/api/v1/register', { token, deviceId: 'outage-dev' });
    expect(registered.status).toBe(200);
    const secret = registered.body.secret as string;

    // With the database up: a wrong secret is refused as such, the right one is let in.
    expect(await connackCode(hub.mqttUrl, 'outage-dev', 'not-the-secret')).toBe(4);
    expect(await connackCode(hub.mqttUrl, 'outage-dev', secret)).toBe(0);

    await postgres.stop();
    expect(await connackCode(hub.mqttUrl, 'outage-dev', secret)).toBe(3);

    // The agent's own link, starting while the database is away: it waits for the hub, and says so.
    const { link, agentLogs } = agentLink(hub, secret, 200);
    await agentLogs.waitFor(
      'the hub cannot take this device just now (its database is out of reach, or it is busy); retrying, nothing to do here',
    );
    expect(link.connected).toBe(false);

    await postgres.start();
    await waitFor('the agent to connect once the database is back', () => link.connected || undefined, { timeoutMs: 30_000 });
    expect(agentLogs.records.filter((r) => /register|refused this device/.test(r.msg))).toEqual([]);
    expect(hub.proc.output).not.toContain('MQTT authentication failed');
    expect(hub.proc.running).toBe(true);
  });

  it('logs an outage once when PostgreSQL goes and once when it is back, and loses no telemetry sent meanwhile', {
    timeout: 120_000,
  }, async () => {
    const postgres = await startPostgres();
    cleanup.add('postgres', () => postgres.close());
    const hub = await startHubProcess(scratchDir('flotilla-outage-'), ['--database', await postgres.createDatabase('quiet')]);
    cleanup.add('hub', () => hub.proc.stop());
    cleanup.add('hub data', () => removeDir(hub.dataDir));
    const token = (await http(hub.url, 'POST', '/api/v1/tokens', {})).body.token as string;
    const { secret } = (await http(hub.url, 'POST', '/api/v1/register', { token, deviceId: 'outage-dev' })).body as { secret: string };
    const { link, agentLogs } = agentLink(hub, secret, 300);
    await waitFor('the agent to connect', () => link.connected || undefined);

    const since = hub.proc.output.length;
    await postgres.stop();
    const event = (seq: number, message: string) => ({ seq, ts: new Date().toISOString(), type: 'started' as const, message });
    link.publishEvent(event(1, 'sent while the database is down'));
    // Held for the telemetry retry window (10 s), then refused: the agent is disconnected, and its reconnects are
    // answered "server unavailable" until the database is back. Meanwhile presence, logins and the API fail too.
    await agentLogs.waitFor('disconnected from hub; apps keep running, reconnecting');
    await agentLogs.waitFor(
      'the hub cannot take this device just now (its database is out of reach, or it is busy); retrying, nothing to do here',
    );
    for (let i = 0; i < 3; i++) expect((await http(hub.url, 'GET', '/api/v1/devices')).status).toBe(503);
    await postgres.start();
    await waitFor('the agent to reconnect', () => link.connected || undefined, { timeoutMs: 30_000 });
    link.publishEvent(event(2, 'sent once the database is back'));

    const stored = await waitFor('both events stored', async () => {
      const res = await http(hub.url, 'GET', '/api/v1/events?device=outage-dev');
      const messages = ((res.body.events ?? []) as { message: string }[]).map((e) => e.message);
      return messages.length >= 2 ? messages : undefined;
    });
    expect(stored.sort()).toEqual(['sent once the database is back', 'sent while the database is down']);

    const lines = hub.proc.output
      .slice(since)
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as { level: number; msg: string; [field: string]: unknown });
    expect(lines.filter((line) => line.level >= 40).map((line) => line.msg)).toEqual([
      'PostgreSQL is unavailable: requests that need it answer 503 until it is back; MQTT sessions stay up',
    ]);
    const back = lines.filter((line) => line.msg === 'PostgreSQL is back');
    expect(back).toHaveLength(1);
    expect(back[0]).toMatchObject({ waitedMs: expect.any(Number), failedQueries: expect.any(Number) });
    expect(back[0]!.failedQueries).toBeGreaterThanOrEqual(3);
  });
});
