/**
 * Three hub replicas (`flotilla server --redis … --database …`, real processes) on a private
 * Redis and PostgreSQL, behind a TCP balancer, with simulated devices (the real agent code over
 * in-memory runtimes) pinned to the hub's key: desired state applied through one replica reaches
 * devices connected to the others, and every replica answers the API alike. Then the leader is
 * killed with SIGKILL in the middle of a rollout: another replica takes the lead, the dead one's
 * devices come back through the others, and the rollout completes with every device counted
 * healthy once, each document signed with the one key the devices pinned. Telemetry is in the shared
 * database: every replica answers a device's logs alike, whichever replica it is connected to, and
 * the lines devices logged as the leader was killed are each stored once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppDetail, DeviceView, List, RolloutStatus } from '../../shared/index.js';
import { Cleanup } from '../support/cleanup.js';
import { emitterReceivers } from '../support/emitter-receivers.js';
import { http } from '../support/http.js';
import type { PostgresServer } from '../support/postgres.js';
import type { HubProcess } from '../support/processes.js';
import type { RedisServer } from '../support/redis.js';
import { startReplicaHubs } from '../support/replica-hubs.js';
import { type Fleet, startFleet } from '../support/sim/fleet.js';
import { duplicates, storedLogLines } from '../support/stored-telemetry.js';
import { startTcpBalancer, type TcpBalancer } from '../support/tcp-balancer.js';
import { waitFor } from '../support/wait.js';

/** Lines each device logs at a time. */
const LINES = 20;

/** Each device's running container writes LINES lines `${device} ${label} n`; returns them per device. */
function logFromEveryDevice(fleet: Fleet, label: string): Map<string, string[]> {
  const written = new Map<string, string[]>();
  for (const device of fleet.devices) {
    const running = device.runtime.containers().find((c) => c.state === 'running');
    if (!running) throw new Error(`${device.id} runs no container to log from`);
    const lines = Array.from({ length: LINES }, (_, i) => `${device.id} ${label} ${i + 1}`);
    for (const line of lines) device.runtime.writeLog(running.id, 'stdout', line);
    written.set(device.id, lines);
  }
  return written;
}

const webApp = (version: string) => ({
  name: 'web',
  scheduling: { selectors: { zone: 'a' } },
  spec: {
    containers: [{ name: 'server', image: `registry.local/replica-web:${version}` }],
    update: { minReadySeconds: 1, healthTimeout: '20s' },
    // Two devices at a time, each pull a second: a rollout of several seconds to kill the leader in.
    rollout: { batchSize: 2 },
  },
});

/** The one running replica whose log says it leads (the dispatcher's line on gaining the lease) and not since that it stopped. */
function leaderOf(replicas: readonly HubProcess[]): number | undefined {
  const leading = replicas
    .map((r, i) => ({ i, output: r.proc.output, running: r.proc.running }))
    .filter((r) => r.running && r.output.lastIndexOf('leading: running rollouts') > r.output.lastIndexOf('no longer leading'));
  return leading.length === 1 ? leading[0]!.i : undefined;
}

describe('three hub replicas on Redis and PostgreSQL', () => {
  const cleanup = new Cleanup();
  let redis: RedisServer;
  let postgres: PostgresServer;
  let replicas: HubProcess[];
  let balancer: TcpBalancer;

  beforeAll(async () => {
    // Kept on disk, as a production Redis would be: sessions and retained documents outlive a restart.
    ({ redis, postgres, replicas } = await startReplicaHubs(cleanup, { count: 3, name: 'replicas', redis: { appendonly: true } }));
    balancer = await startTcpBalancer(replicas.map((r) => r.mqttPort));
    cleanup.add('balancer', () => balancer.close());
  }, 90_000);
  afterAll(() => cleanup.run());

  const api = (replica: number, method: string, path: string, body?: unknown) => http(replicas[replica]!.url, method, path, body);
  const devices = async (replica: number) => ((await api(replica, 'GET', '/api/v1/devices')).body as List<DeviceView>).items;
  const runningAt = (list: DeviceView[], version: number) =>
    list.filter((d) => d.online && d.apps.some((a) => a.name === 'web' && a.revision === version && a.phase === 'running')).length;

  it('serves one fleet from every replica, and survives one replica killed', { timeout: 180_000 }, async () => {
    // The key every replica serves is the one key the fleet pins.
    const keys = await Promise.all(
      [0, 1, 2].map(async (i) => ((await api(i, 'GET', '/api/v1/hub/key')).body as { hubKey: string }).hubKey),
    );
    expect(new Set(keys).size).toBe(1);

    const fleet: Fleet = await startFleet({
      hubUrl: `mqtt://127.0.0.1:${balancer.port}`,
      count: 6,
      idPrefix: 'rep',
      labels: () => ({ zone: 'a' }),
      resyncIntervalMs: 500,
      pullDelayMs: 1_000,
      agent: { stateIntervalMs: 200, hubKey: keys[0] },
    });
    cleanup.add('fleet', () => fleet.close());
    expect((await api(1, 'POST', '/api/v1/apps', webApp('1.0'))).status).toBe(200);
    await waitFor('revision 1 running on every device, seen from replica 2', async () => runningAt(await devices(2), 1) === 6, {
      timeoutMs: 30_000,
    });
    // The balancer spread the devices over all three replicas.
    expect([...balancer.routed.values()].filter((n) => n > 0)).toHaveLength(3);
    // The API answers alike on every replica.
    const views = await Promise.all([0, 1, 2].map(async (i) => (await api(i, 'GET', '/api/v1/apps/web')).body as AppDetail));
    expect(views[1]).toEqual(views[0]);
    expect(views[2]).toEqual(views[0]);
    expect(views[0]).toMatchObject({ revision: 1 });
    // A state report is taken by the replica it came through: through Redis it reaches no replica
    // (none decodes another's reports), while a status, the leader's wherever it came through, reaches all three.
    expect(await emitterReceivers(redis, 'flotilla/v1/devices/rep-none/state')).toBe(0);
    expect(await emitterReceivers(redis, 'flotilla/v1/api/svc-none/request')).toBe(0);
    expect(await emitterReceivers(redis, 'flotilla/v1/devices/rep-none/status')).toBe(3);

    // Logs are stored in the shared database: every replica answers each device's lines alike,
    // so two of the three answer for devices connected elsewhere.
    const steady = logFromEveryDevice(fleet, 'steady');
    for (const [id, lines] of steady) {
      await waitFor(`${id}'s lines on every replica`, async () => {
        const answers = await Promise.all(
          replicas.map(async (r) => (await storedLogLines(r.url, id)).filter((l) => l.includes(' steady '))),
        );
        return answers.every((stored) => JSON.stringify(stored) === JSON.stringify(lines));
      });
    }

    // Revision 2 through another replica, rolled out two devices at a time; the leader is killed once it has begun.
    await waitFor('one replica leading', async () => leaderOf(replicas) !== undefined);
    const leader = leaderOf(replicas)!;
    const survivors = [0, 1, 2].filter((i) => i !== leader);
    expect((await api(survivors[0]!, 'POST', '/api/v1/apps', webApp('2.0'))).body).toMatchObject({ revision: 2 });
    const rollout = async (i: number) => (await api(i, 'GET', '/api/v1/apps/web/rollout')).body as RolloutStatus;
    await waitFor('the rollout under way', async () => (await rollout(survivors[1]!)).counts.healthy >= 1, { timeoutMs: 30_000 });
    const before = await rollout(survivors[1]!);
    expect(before.phase).toBe('progressing');
    expect(before.counts.healthy).toBeLessThan(6);
    // Devices log as the leader dies: what its devices had acknowledged is committed, the rest is resent to the others.
    const killed = logFromEveryDevice(fleet, 'kill');
    await replicas[leader]!.proc.stop(true);

    await waitFor('another replica leading', async () => leaderOf(replicas) !== undefined, { timeoutMs: 30_000 });
    expect(survivors).toContain(leaderOf(replicas));
    await waitFor(
      'every device online again, through the other two',
      async () => (await devices(survivors[0]!)).filter((d) => d.online).length === 6,
      {
        timeoutMs: 60_000,
      },
    );
    await waitFor('the rollout complete', async () => (await rollout(survivors[0]!)).phase === 'complete', { timeoutMs: 60_000 });
    expect((await rollout(survivors[1]!)).counts).toEqual({ total: 6, healthy: 6, failed: 0, reverted: 0, pending: 0, updating: 0 });
    await waitFor('revision 2 running on every device', async () => runningAt(await devices(survivors[1]!), 2) === 6, {
      timeoutMs: 30_000,
    });
    expect(((await api(survivors[0]!, 'GET', '/api/v1/apps/web')).body as AppDetail).revision).toBe(2);

    // Every line logged as the leader was killed is stored, once, and answered alike by both survivors.
    for (const [id, lines] of killed) {
      const kill = async (replica: number) => (await storedLogLines(replicas[replica]!.url, id)).filter((l) => l.includes(' kill '));
      await waitFor(`${id}'s kill lines stored`, async () => new Set(await kill(survivors[0]!)).size === lines.length, {
        timeoutMs: 30_000,
      });
      const stored = await kill(survivors[0]!);
      expect(duplicates(stored), id).toEqual([]);
      expect([...stored].sort(), id).toEqual([...lines].sort());
      expect(await kill(survivors[1]!), id).toEqual(stored);
    }
  });
  it('recovers from a Redis restart and then a PostgreSQL restart without restarting, saying what it waited for', {
    timeout: 120_000,
  }, async () => {
    const live = [0, 1, 2].filter((i) => replicas[i]!.proc.running);
    expect(live).toHaveLength(2);
    const [a, b] = live as [number, number];
    const fleet = await startFleet({
      hubUrl: `mqtt://127.0.0.1:${balancer.port}`,
      count: 4,
      idPrefix: 'svc',
      labels: () => ({ zone: 'b' }),
      resyncIntervalMs: 500,
      agent: { stateIntervalMs: 200 },
    });
    cleanup.add('second fleet', () => fleet.close());
    const zoneB = (version: string) => ({ ...webApp(version), name: 'svc', scheduling: { selectors: { zone: 'b' } } });
    const runningSvc = async (version: number) =>
      (await devices(a)).filter((d) => d.online && d.apps.some((x) => x.name === 'svc' && x.revision === version && x.phase === 'running'))
        .length;
    expect((await api(a, 'POST', '/api/v1/apps', zoneB('1.0'))).status).toBe(200);
    await waitFor('svc revision 1 on the four devices', async () => (await runningSvc(1)) === 4, { timeoutMs: 30_000 });

    await redis.restart();
    await waitFor('both replicas saying Redis is back', async () => live.every((i) => replicas[i]!.proc.output.includes('Redis is back')), {
      timeoutMs: 30_000,
    });
    expect((await api(b, 'POST', '/api/v1/apps', zoneB('2.0'))).status).toBe(200);
    await waitFor('svc revision 2 on the four devices after Redis restarted', async () => (await runningSvc(2)) === 4, {
      timeoutMs: 60_000,
    });

    await postgres.restart();
    await waitFor('the API answering after PostgreSQL restarted', async () => (await api(a, 'GET', '/api/v1/apps')).status === 200, {
      timeoutMs: 30_000,
    });
    expect((await api(a, 'POST', '/api/v1/apps', zoneB('3.0'))).status).toBe(200);
    await waitFor('svc revision 3 on the four devices after PostgreSQL restarted', async () => (await runningSvc(3)) === 4, {
      timeoutMs: 60_000,
    });
    expect(live.every((i) => replicas[i]!.proc.running)).toBe(true);
  });
});
