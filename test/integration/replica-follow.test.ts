/**
 * Live follow across hub replicas: three `flotilla server --redis … --database …` processes on a
 * private Redis and PostgreSQL, a device (a plain MQTT client on the agent's topics) connected to
 * replica 0, and follow streams (the HTTP `?follow=true` route the CLI and the console read) on
 * other replicas:
 * - a device's lines and events committed by replica 0 reach followers on replica 1 live, each
 *   once and in order, and a follower on replica 0 sees the very same;
 * - the follower on replica 1 asks the device for its live log window through replica 0;
 * - the device moving to replica 2 mid-follow keeps feeding the follower, and finds the live
 *   window asked for on its new replica;
 * - a follower that resumes with `afterId` gets exactly what came after;
 * - the console's fleet stream on replica 1 shows the sparkline of a device on replica 0, with
 *   the samples stored before anyone watched, and takes its new samples live; `top` on replica 2
 *   shows its newest sample, and the next one;
 * - nobody following, a replica relays nothing: Redis carries each message once, not once more
 *   per replica (counted by Redis' own PUBLISH statistics); someone following, a device's lines
 *   go to the follower's replica a few commits at a time, not one message per commit;
 * - a replica that stopped answering (SIGSTOP) holds a new follow up only for the acknowledgement
 *   timeout, and a follower that leaves while its stream waits leaves nothing relayed behind.
 */
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type EventRecord,
  FLEET_EVENT,
  type FleetChanges,
  type FleetRow,
  type FleetSnapshot,
  type LogRecord,
  TELEMETRY_LINK_COMMAND,
  Topics,
} from '../../shared/index.js';
import { Cleanup } from '../support/cleanup.js';
import { deviceState, logLine, metricsSample } from '../support/fixtures.js';
import { http } from '../support/http.js';
import { closeClient, connectClient, Inbox } from '../support/mqtt-client.js';
import type { HubProcess } from '../support/processes.js';
import type { RedisServer } from '../support/redis.js';
import { startReplicaHubs } from '../support/replica-hubs.js';
import { waitFor } from '../support/wait.js';

const DEVICE = 'moving-1';
const topics = new Topics();

/** One `?follow=true` stream, its records kept as they arrive. */
class Follower {
  readonly records: (LogRecord | EventRecord)[] = [];
  /** Every event as it came, with its name (the fleet stream's `fleet` and `fleet-changes`). */
  readonly events: { event: string; data: unknown }[] = [];
  private text = '';
  private readonly abort = new AbortController();

  private constructor() {}

  /** Opens the stream; resolves once it is open (the hub answers after its backlog, with the subscription in place). */
  static async open(url: string, cleanup: Cleanup): Promise<Follower> {
    const follower = new Follower();
    cleanup.add(`follower ${url}`, () => follower.close());
    const res = await fetch(url, { signal: follower.abort.signal });
    expect(res.status).toBe(200);
    void follower.read(res.body!.getReader());
    return follower;
  }

  lines(): string[] {
    return (this.records as LogRecord[]).map((r) => r.line);
  }

  async waitForLines(count: number): Promise<void> {
    await waitFor(`${count} lines on the stream (got ${this.records.length})`, () => this.records.length >= count, {
      timeoutMs: 15_000,
      intervalMs: 20,
    });
  }

  close(): void {
    this.abort.abort();
  }

  private async read(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        this.text += decoder.decode(value, { stream: true });
        const blocks = this.text.split('\n\n');
        this.text = blocks.pop() ?? '';
        for (const block of blocks) {
          const data = block.split('\n').find((l) => l.startsWith('data: '));
          if (!block.startsWith('event: ') || !data) continue;
          const parsed = JSON.parse(data.slice('data: '.length));
          this.records.push(parsed);
          this.events.push({ event: block.split('\n')[0]!.slice('event: '.length), data: parsed });
        }
      }
    } catch {
      // aborted by close()
    }
  }
}

describe('live follow across hub replicas', () => {
  const cleanup = new Cleanup();
  let redis: RedisServer;
  let replicas: HubProcess[];
  let seq = 0;

  beforeAll(async () => {
    ({ redis, replicas } = await startReplicaHubs(cleanup, { count: 3, name: 'follow' }));
    // Every replica has heard every other's broker heartbeat (every 5 s), so a follow waits for all of them.
    await new Promise((resolve) => setTimeout(resolve, 6_000));
  }, 90_000);
  afterAll(() => cleanup.run());

  /** Redis' count of PUBLISH commands so far. */
  const publishes = async () => {
    const stats = String(await redis.command('INFO', 'commandstats'));
    return Number(/cmdstat_publish:calls=(\d+)/.exec(stats)?.[1] ?? 0);
  };

  /** PUBLISH commands Redis took while `act` ran, once the last one is in (a PUBACK waits for the commit, not for Redis). */
  async function publishedDuring(act: () => Promise<void>, atLeast: number): Promise<number> {
    const before = await publishes();
    await act();
    await waitFor('the messages in Redis', async () => (await publishes()) - before >= atLeast);
    await new Promise((resolve) => setTimeout(resolve, 500));
    return (await publishes()) - before;
  }

  const logsUrl = (replica: number, query = '') => `${replicas[replica]!.url}/api/v1/devices/${DEVICE}/logs?follow=true${query}`;

  /** The device as the agent is on the wire: its will on its own status topic, subscribed to its commands. */
  async function connectDevice(replica: number, id = DEVICE): Promise<{ client: MqttClient; inbox: Inbox }> {
    const status = topics.device(id, 'status');
    const client = await connectClient(replicas[replica]!.mqttUrl, {
      clientId: id,
      will: { topic: status, payload: Buffer.from(JSON.stringify({ online: false, at: new Date().toISOString() })), qos: 1, retain: true },
    });
    const inbox = new Inbox(client);
    await client.subscribeAsync(topics.device(id, 'commands'), { qos: 1 });
    await client.publishAsync(topics.device(id, 'state'), JSON.stringify(deviceState(id)), { qos: 1, retain: true });
    await client.publishAsync(status, JSON.stringify({ online: true, at: new Date().toISOString() }), { qos: 1, retain: true });
    return { client, inbox };
  }

  /** One batch per line, each acknowledged (committed) before the next goes. */
  async function log(client: MqttClient, lines: string[], id = DEVICE): Promise<void> {
    for (const line of lines) {
      seq += 1;
      await client.publishAsync(topics.device(id, 'logs'), JSON.stringify({ seq, lines: [logLine(line)] }), { qos: 1 });
    }
  }

  const liveWindowAsked = (inbox: Inbox) =>
    inbox.waitFor<{ type: string; args: { liveForMs?: number } }>(
      topics.device(DEVICE, 'commands'),
      (c) => c.type === TELEMETRY_LINK_COMMAND && (c.args.liveForMs ?? 0) > 0,
    );

  it('relays nothing while nobody follows: Redis carries each message once', { timeout: 60_000 }, async () => {
    const { client } = await connectDevice(0);
    cleanup.add('quiet device', () => closeClient(client));
    await waitFor(`${DEVICE} known to every replica`, async () =>
      (await Promise.all(replicas.map(async (r) => (await http(r.url, 'GET', `/api/v1/devices/${DEVICE}`)).status))).every(
        (status) => status === 200,
      ),
    );
    const sent = await publishedDuring(
      () =>
        log(
          client,
          Array.from({ length: 100 }, (_, i) => `quiet ${i}`),
        ),
      100,
    );
    // The device's own 100 messages cross Redis once each (the shared emitter); the rest is the
    // brokers' heartbeats. Relaying its lines to the two other replicas would add 200.
    expect(sent).toBeGreaterThanOrEqual(100);
    expect(sent).toBeLessThan(130);
    await closeClient(client);
  });

  it("relays a followed device's lines a few commits at a time", { timeout: 60_000 }, async () => {
    const id = 'chatty-1';
    const { client } = await connectDevice(0, id);
    cleanup.add('chatty device', () => closeClient(client));
    await waitFor(`${id} known`, async () => (await http(replicas[1]!.url, 'GET', `/api/v1/devices/${id}`)).status === 200);
    const follower = await Follower.open(`${replicas[1]!.url}/api/v1/devices/${id}/logs?follow=true`, cleanup);
    const lines = Array.from({ length: 40 }, (_, i) => `chatty ${i}`);
    // Each line is committed before the next is sent: 40 commits, a few milliseconds apart.
    const sent = await publishedDuring(() => log(client, lines, id), 40);
    await follower.waitForLines(40);
    expect(follower.lines()).toEqual(lines);
    // 40 messages of the device's own, and the relays to replica 1; one relay per commit would make it 80.
    expect(sent).toBeLessThan(65);
    follower.close();
  });

  it('feeds followers on every replica, once each and in order, wherever the device is connected', {
    timeout: 90_000,
  }, async () => {
    const { client, inbox } = await connectDevice(0);
    cleanup.add('device on replica 0', () => closeClient(client));
    await log(client, ['before 1', 'before 2']);

    const onOther = await Follower.open(logsUrl(1, '&tail=2'), cleanup);
    const onOwn = await Follower.open(logsUrl(0, '&tail=2'), cleanup);
    const events = await Follower.open(`${replicas[2]!.url}/api/v1/events?follow=true&since=1m`, cleanup);
    await onOther.waitForLines(2);
    await onOwn.waitForLines(2);
    // The follower on replica 1 asked, through replica 0, for the device's live log window.
    await liveWindowAsked(inbox);

    const live = Array.from({ length: 20 }, (_, i) => `live ${i + 1}`);
    await log(client, live);
    await client.publishAsync(
      topics.device(DEVICE, 'events'),
      JSON.stringify({ seq: 1, ts: new Date().toISOString(), type: 'started', app: 'web', message: 'started on replica 0' }),
      { qos: 1 },
    );
    await onOther.waitForLines(22);
    await onOwn.waitForLines(22);
    expect(onOther.lines()).toEqual(['before 1', 'before 2', ...live]);
    expect(onOwn.records).toEqual(onOther.records);
    const deviceEvents = () => (events.records as EventRecord[]).filter((e) => e.device === DEVICE).map((e) => e.message);
    await waitFor('the event on replica 2', () => deviceEvents().length >= 1);

    // The device moves to replica 2 mid-follow: its new replica relays its lines, and asks it for its live window.
    await closeClient(client);
    const moved = await connectDevice(2);
    cleanup.add('device on replica 2', () => closeClient(moved.client));
    await liveWindowAsked(moved.inbox);
    const after = Array.from({ length: 10 }, (_, i) => `moved ${i + 1}`);
    await log(moved.client, after);
    await moved.client.publishAsync(
      topics.device(DEVICE, 'events'),
      JSON.stringify({ seq: 2, ts: new Date().toISOString(), type: 'started', app: 'web', message: 'started on replica 2' }),
      { qos: 1 },
    );
    await onOther.waitForLines(32);
    await onOwn.waitForLines(32);
    expect(onOther.lines()).toEqual(['before 1', 'before 2', ...live, ...after]);
    expect(onOwn.records).toEqual(onOther.records);
    const ids = onOther.records.map((r) => r.id);
    expect([...ids].sort((a, b) => a - b)).toEqual(ids);
    await waitFor('both events on replica 2', () => deviceEvents().length >= 2);
    expect(deviceEvents()).toEqual(['started on replica 0', 'started on replica 2']);

    // A follower resuming after the tenth live line gets exactly what came after it, then what comes next.
    const resumed = await Follower.open(logsUrl(1, `&afterId=${onOther.records[11]!.id}`), cleanup);
    await resumed.waitForLines(20);
    await log(moved.client, ['resumed live']);
    await resumed.waitForLines(21);
    await onOther.waitForLines(33);
    expect(resumed.lines()).toEqual([...live.slice(10), ...after, 'resumed live']);
    expect(onOther.lines().at(-1)).toBe('resumed live');
    expect(onOther.records).toHaveLength(33);
  });

  it('shows the sparkline of a device on another replica on the fleet page, stored samples first, then live', {
    timeout: 60_000,
  }, async () => {
    const id = 'sparks-1';
    const { client } = await connectDevice(0, id);
    cleanup.add('sparks device', () => closeClient(client));
    const sample = (n: number) => metricsSample(n, { host: { ...metricsSample(n).host, cpuPercent: n * 10 } });
    // Stored while nobody watched the fleet on replica 1, so replica 1 heard of none of them.
    for (const n of [1, 2, 3]) await client.publishAsync(topics.device(id, 'metrics'), JSON.stringify(sample(n)), { qos: 1 });
    await waitFor('three samples stored', async () => {
      const res = await http(replicas[1]!.url, 'GET', `/api/v1/devices/${id}/metrics`);
      return res.status === 200 && (res.body as { samples: unknown[] }).samples.length === 3;
    });

    const fleet = await Follower.open(`${replicas[1]!.url}/api/v1/devices?follow=true`, cleanup);
    const row = () => {
      let found: FleetRow | undefined;
      for (const { event, data } of fleet.events) {
        const items = event === FLEET_EVENT.all ? (data as FleetSnapshot).items : (data as FleetChanges).items;
        found = items.find((r) => r.id === id) ?? found;
      }
      return found;
    };
    await waitFor('the fleet snapshot', () => row() !== undefined);
    expect(row()!.history.cpu).toEqual([10, 20, 30]);
    expect(row()!.metrics?.cpuPercent).toBe(30);

    await client.publishAsync(topics.device(id, 'metrics'), JSON.stringify(sample(4)), { qos: 1 });
    await waitFor('the live sample on replica 1', () => row()?.history.cpu.length === 4);
    expect(row()!.history.cpu).toEqual([10, 20, 30, 40]);
    expect(row()!.metrics?.cpuPercent).toBe(40);

    // top on a replica whose fleet nobody watched: the newest sample, then the next one.
    const topCpu = async () => {
      const res = await http(replicas[2]!.url, 'GET', '/api/v1/top');
      return (res.body as { devices: { id: string; cpuPercent?: number }[] }).devices.find((d) => d.id === id)?.cpuPercent;
    };
    expect(await topCpu()).toBe(40);
    await client.publishAsync(topics.device(id, 'metrics'), JSON.stringify(sample(5)), { qos: 1 });
    await waitFor('the next sample in top on replica 2', async () => (await topCpu()) === 50);
  });

  it('waits for a replica that stopped answering only so long, and forgets a follower that left while it waited', {
    timeout: 60_000,
  }, async () => {
    const id = 'frozen-1';
    const { client } = await connectDevice(0, id);
    cleanup.add('frozen device', () => closeClient(client));
    const url = `${replicas[1]!.url}/api/v1/devices/${id}/logs?follow=true`;
    const frozen = replicas[2]!.proc.child.pid!;
    process.kill(frozen, 'SIGSTOP');
    const thaw = () => {
      try {
        process.kill(frozen, 'SIGCONT');
      } catch {
        // already gone
      }
    };
    cleanup.add('replica 2 running again', thaw);
    try {
      // A follower that leaves while its stream waits for replica 2's acknowledgement.
      const leaving = new AbortController();
      const left = fetch(url, { signal: leaving.signal }).catch(() => undefined);
      await new Promise((resolve) => setTimeout(resolve, 500));
      leaving.abort();
      await left;
      // A follower that stays: its stream opens once the acknowledgement timeout (3 s) has passed.
      const openedAt = Date.now();
      const staying = await Follower.open(`${url}&tail=1`, cleanup);
      const waitedMs = Date.now() - openedAt;
      expect(waitedMs).toBeGreaterThan(2_000);
      expect(waitedMs).toBeLessThan(8_000);
      await log(client, ['while replica 2 slept'], id);
      await staying.waitForLines(1);
      expect(staying.lines()).toEqual(['while replica 2 slept']);
      staying.close();
    } finally {
      thaw();
    }
    // Replica 1 says it follows nothing now, so replica 0 relays none of the device's next lines.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const sent = await publishedDuring(
      () =>
        log(
          client,
          Array.from({ length: 50 }, (_, i) => `after ${i}`),
          id,
        ),
      50,
    );
    expect(sent).toBeLessThan(75);
  });
});
