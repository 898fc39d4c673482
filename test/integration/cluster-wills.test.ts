/**
 * Wills on replicas sharing one Redis. A replica killed with SIGKILL (a real
 * `flotilla server --redis` process) publishes nothing: its clients' wills
 * must come from the replicas still alive, within the bound the cluster's
 * heartbeat sets (broker/mqtt/cluster.ts: 7 heartbeats, 35 s), and not for a
 * client that is already back on another replica. A client id that moves to
 * another replica while the first is alive publishes no will either
 * (broker/mqtt/cluster-wills.ts). A replica stopped gracefully (SIGTERM)
 * publishes its clients' wills itself as it closes, through Redis, before it
 * lets go of it (broker/mqtt/cluster-close.ts). Real brokers, MQTT.js
 * clients, redis-server.
 */
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { EmbeddedBroker } from '../../broker/mqtt/broker.js';
import { DEFAULT_CLUSTER_HEARTBEAT_MS } from '../../broker/mqtt/cluster.js';
import { ClientIdClashes } from '../../broker/mqtt/id-clash.js';
import type { IdClash } from '../../shared/index.js';
import { Cleanup } from '../support/cleanup.js';
import { closeClient, connectClient, Inbox } from '../support/mqtt-client.js';
import { startPostgres } from '../support/postgres.js';
import { scratchDir, startHubProcess, stopAll } from '../support/processes.js';
import { type RedisServer, startRedis } from '../support/redis.js';
import { startReplicaBroker } from '../support/replica-broker.js';
import { waitFor } from '../support/wait.js';

const status = (id: string) => `flotilla/v1/devices/${id}/status`;
/** A dead replica's wills go out once its heartbeat is 3 intervals stale, at a sweep that runs every 4. */
const WILLS_WITHIN_MS = 7 * DEFAULT_CLUSTER_HEARTBEAT_MS;

describe('wills on broker replicas', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());
  afterAll(() => stopAll());

  async function redis(): Promise<RedisServer> {
    const server = await startRedis();
    return cleanup.add('redis', () => server.close(), server);
  }

  async function replica(server: RedisServer): Promise<EmbeddedBroker> {
    const broker = await startReplicaBroker(server.url);
    return cleanup.add('replica', () => broker.close(), broker);
  }

  /** A device as the agent connects: persistent session, and a retained offline status as its will. */
  async function device(url: string, id: string): Promise<MqttClient> {
    const c = await connectClient(url, {
      clientId: id,
      clean: false,
      keepalive: 30,
      will: { topic: status(id), payload: Buffer.from(JSON.stringify({ online: false })), qos: 1, retain: true },
    });
    cleanup.add('device', () => closeClient(c));
    await c.publishAsync(status(id), JSON.stringify({ online: true }), { qos: 1, retain: true });
    return c;
  }

  /** The last status each device has on a dashboard's subscription. */
  function lastStatus(inbox: Inbox): Map<string, boolean> {
    const last = new Map<string, boolean>();
    for (const m of inbox.messages) last.set(m.topic.split('/')[3] ?? '', (m.json as { online: boolean }).online);
    return last;
  }

  /** Three `flotilla server --redis` processes on one PostgreSQL, a dashboard on the second, 25 devices and an impostor on the first. */
  async function threeHubsWithDevicesOnTheFirst() {
    const server = await redis();
    const postgres = await startPostgres();
    cleanup.add('postgres', () => postgres.close());
    const keys = scratchDir('flotilla-wills-keys-');
    const args = [
      '--redis',
      server.url,
      '--database',
      await postgres.createDatabase('wills'),
      '--secrets-key-file',
      join(keys, 'secrets.key'),
    ];
    // Three hubs: what decides which wills go out is the hub's own wiring (broker/hub/mqtt.ts).
    // One after another: the first makes the secrets key file the others use.
    const [killed, b, c] = [
      await startHubProcess(undefined, args),
      await startHubProcess(undefined, args),
      await startHubProcess(undefined, args),
    ];
    const dashboard = await connectClient(b.mqttUrl);
    cleanup.add('dashboard', () => closeClient(dashboard));
    const seen = new Inbox(dashboard);
    await dashboard.subscribeAsync('flotilla/v1/devices/+/status', { qos: 1 });

    const stranded = Array.from({ length: 20 }, (_, i) => `stranded-${i}`);
    const movers = Array.from({ length: 5 }, (_, i) => `mover-${i}`);
    const onFirst = new Map<string, MqttClient>();
    for (const id of [...stranded, ...movers]) onFirst.set(id, await device(killed.mqttUrl, id));
    // A client whose will names another device's status: no live hub can authorize that for it.
    const impostor = await connectClient(killed.mqttUrl, {
      clientId: 'impostor',
      will: { topic: status('stranded-0'), payload: Buffer.from(JSON.stringify({ online: true, forged: true })), qos: 1, retain: true },
    });
    cleanup.add('impostor', () => closeClient(impostor));
    await waitFor('every device online on the dashboard', () => [...lastStatus(seen).values()].filter(Boolean).length === 25);
    return { server, killed, c, seen, stranded, movers, onFirst, impostor };
  }

  it('publishes a killed replica’s wills from the live ones within 7 heartbeats, except for clients already back elsewhere', {
    timeout: 150_000,
  }, async () => {
    const { server, killed, c, seen, stranded, movers } = await threeHubsWithDevicesOnTheFirst();
    await killed.proc.stop(true);
    const killedAt = Date.now();
    // The movers are back at once, on another replica, as agents reconnecting through a load balancer.
    for (const id of movers) await device(c.mqttUrl, id);

    const offline = () => stranded.filter((id) => lastStatus(seen).get(id) === false);
    await waitFor("the 20 stranded devices' wills", () => offline().length === 20, {
      timeoutMs: WILLS_WITHIN_MS + 10_000,
      intervalMs: 100,
    });
    const elapsedMs = Date.now() - killedAt;
    expect(elapsedMs).toBeLessThan(WILLS_WITHIN_MS + 2_000);
    // Both live hubs have swept by now (each sweeps every 4 heartbeats); none published a mover's old will, or the impostor's.
    await new Promise((resolve) => setTimeout(resolve, 4 * DEFAULT_CLUSTER_HEARTBEAT_MS));
    for (const id of movers) expect(lastStatus(seen).get(id)).toBe(true);
    expect(seen.messages.filter((m) => m.topic.includes('mover') && (m.json as { online: boolean }).online === false)).toEqual([]);
    expect(seen.messages.filter((m) => (m.json as { forged?: boolean }).forged)).toEqual([]);
    expect(await server.command('LRANGE', 'flotilla:will', 0, -1)).toHaveLength(5);
    console.info(`wills of a killed replica's 20 clients delivered on another replica ${elapsedMs} ms after the kill`);
  });

  it('delivers the wills of a gracefully stopped replica’s clients to the other replicas, and a device back at once elsewhere stays online', {
    timeout: 150_000,
  }, async () => {
    const { killed: stopped, c, seen, stranded, movers, onFirst, impostor } = await threeHubsWithDevicesOnTheFirst();
    // These hubs run without authentication, so the stopping hub, which still holds the impostor's connection,
    // may publish its will as a single hub would; only a replica that never saw it connect refuses it (test above).
    await closeClient(impostor);
    // The movers come back on another replica the moment the stopping one closes their connections, as agents
    // reconnecting through a load balancer do, racing the wills the stopping replica publishes for them.
    const back: Promise<MqttClient>[] = [];
    for (const id of movers) {
      const client = onFirst.get(id);
      client?.once('close', () => back.push(device(c.mqttUrl, id)));
    }
    const stoppedAt = Date.now();
    await stopped.proc.stop();
    const stopMs = Date.now() - stoppedAt;

    const offline = () => stranded.filter((id) => lastStatus(seen).get(id) === false);
    await waitFor("the 20 stranded devices' wills", () => offline().length === 20, {
      timeoutMs: WILLS_WITHIN_MS + 10_000,
      intervalMs: 100,
    });
    const elapsedMs = Date.now() - stoppedAt;
    expect(elapsedMs).toBeLessThan(WILLS_WITHIN_MS + 2_000);
    await Promise.all(back);
    expect(back).toHaveLength(movers.length);
    // Past the live replicas' sweeps too: whatever said a mover was offline came before its online through the other replica.
    await new Promise((resolve) => setTimeout(resolve, 4 * DEFAULT_CLUSTER_HEARTBEAT_MS));
    for (const id of movers) expect(lastStatus(seen).get(id)).toBe(true);
    console.info(
      `wills of a gracefully stopped replica's 20 clients delivered on another replica ${elapsedMs} ms after SIGTERM (the stop took ${stopMs} ms)`,
    );
  });

  it('publishes no will when a client id moves to another live replica', async () => {
    const server = await redis();
    const [a, b, c] = [await replica(server), await replica(server), await replica(server)];
    const dashboard = await connectClient(`mqtt://127.0.0.1:${b.mqttPort}`);
    cleanup.add('dashboard', () => closeClient(dashboard));
    const seen = new Inbox(dashboard);
    await dashboard.subscribeAsync('flotilla/v1/devices/+/status', { qos: 1 });

    const first = await device(`mqtt://127.0.0.1:${a.mqttPort}`, 'roamer');
    const closed = new Promise<void>((resolve) => first.once('close', () => resolve()));
    await device(`mqtt://127.0.0.1:${c.mqttPort}`, 'roamer');
    // A closes the connection it held [MQTT-3.1.4-2]…
    await closed;
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    // …and its will, which would say offline after (or before) the device's online through C, is not published.
    expect(seen.on(status('roamer')).map((m) => m.json)).toEqual([{ online: true }, { online: true }]);
  });

  it('counts a device id taken back and forth between replicas as a clash', async () => {
    const server = await redis();
    const clashes: IdClash[] = [];
    const replicaWithClashWatch = async () => {
      const watch = new ClientIdClashes({ isDevice: async () => true, onClash: (clash) => clashes.push(clash) });
      const broker = await startReplicaBroker(server.url, { hooks: { preConnect: watch.preConnect } });
      cleanup.add('replica', () => broker.close());
      watch.attach(broker.aedes, broker.tookOverElsewhere);
      return broker;
    };
    const [a, b] = [await replicaWithClashWatch(), await replicaWithClashWatch()];
    // Two devices with one id (a copied SD card), one behind each replica, each back as soon as it is pushed out.
    for (let round = 0; round < 6 && clashes.length === 0; round++) {
      const replica = round % 2 === 0 ? a : b;
      await device(`mqtt://127.0.0.1:${replica.mqttPort}`, 'twin');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await waitFor('a clash reported', () => clashes.length > 0);
    expect(clashes[0]).toMatchObject({ deviceId: 'twin', takeovers: 3 });
  });

  it('still publishes the will of a client whose connection drops without DISCONNECT', async () => {
    const server = await redis();
    const [a, b] = [await replica(server), await replica(server)];
    const dashboard = await connectClient(`mqtt://127.0.0.1:${b.mqttPort}`);
    cleanup.add('dashboard', () => closeClient(dashboard));
    const seen = new Inbox(dashboard);
    await dashboard.subscribeAsync('flotilla/v1/devices/+/status', { qos: 1 });
    const dropped = await device(`mqtt://127.0.0.1:${a.mqttPort}`, 'dropper');
    dropped.stream.destroy();
    await seen.waitFor(status('dropper'), (p) => p.online === false);
  });
});
