/**
 * Three hub replicas (`flotilla server --redis … --database …`) on a private Redis and
 * PostgreSQL, behind a TCP balancer, serving two real agents on the Docker Engine and four
 * simulated devices: an app applied through one replica runs everywhere, and `flotilla exec`
 * into each real device's container works through every replica; a rollout applied
 * through another is interrupted by the leader's SIGKILL and completes under the next leader,
 * with the real containers on the new image and every device counted healthy once.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { RolloutStatus } from '../../shared/index.js';
import { type PostgresServer, startPostgres } from '../support/postgres.js';
import { type HubProcess, removeDir, runCli, scratchDir, startAgentProcess, startHubProcess, stopAll } from '../support/processes.js';
import { type RedisServer, startRedis } from '../support/redis.js';
import { type Fleet, startFleet } from '../support/sim/fleet.js';
import { startTcpBalancer, type TcpBalancer } from '../support/tcp-balancer.js';
import { waitFor } from '../support/wait.js';
import { removeContainersAndVolumes } from './support/docker-cli.js';
import { describeDocker } from './support/engine.js';
import { FleetApp, sameEverywhere } from './support/fleet-app.js';
import { ensureTestImages, retagInRegistry, type TestImages } from './support/images.js';

const suffix = Math.random().toString(36).slice(2, 8);
const app = `e2e-replicas-${suffix}`;
const real = [`e2e-rep-${suffix}-a`, `e2e-rep-${suffix}-b`];

describeDocker('hub replicas with real agents', () => {
  let images: TestImages;
  let redis: RedisServer;
  let postgres: PostgresServer;
  const replicas: HubProcess[] = [];
  let balancer: TcpBalancer;
  let fleet: Fleet;
  let all: string[];
  const dir = scratchDir('flotilla-e2e-replicas-');

  const cli = async (replica: number, ...args: string[]) => runCli(['--hub', replicas[replica]!.url, ...args]);
  const status = async (replica: number) =>
    JSON.parse((await cli(replica, 'rollout', 'status', app, '-o', 'json')).stdout) as RolloutStatus;

  const fleetApp = new FleetApp(app, { fleet: suffix }, dir, { minReadySeconds: 1, healthTimeout: '20s' });
  const through =
    (replica: number) =>
    (...args: string[]) =>
      cli(replica, ...args);
  const apply = (replica: number, image: string, rollout?: object) => fleetApp.apply(through(replica), image, rollout);
  const onDevices = (replica: number) => fleetApp.onDevices(through(replica), all);
  const everywhere = (value: string) => sameEverywhere(all, value);
  const realImages = () => fleetApp.realImages();

  beforeAll(async () => {
    images = await ensureTestImages();
    redis = await startRedis({ appendonly: true });
    postgres = await startPostgres();
    const database = await postgres.createDatabase('e2e_replicas');
    const args = ['--redis', redis.url, '--database', database, '--secrets-key-file', join(dir, 'secrets.key')];
    for (let i = 0; i < 3; i++) replicas.push(await startHubProcess(scratchDir(`flotilla-e2e-replica-${i}-`), args));
    balancer = await startTcpBalancer(replicas.map((r) => r.mqttPort));
    const through = { ...replicas[0]!, mqttUrl: `mqtt://127.0.0.1:${balancer.port}` };
    for (const id of real) startAgentProcess(through, id, { fleet: suffix }, { namePrefix: `${id}.` });
    fleet = await startFleet({
      hubUrl: through.mqttUrl,
      count: 4,
      idPrefix: `e2e-rep-${suffix}-sim`,
      labels: () => ({ fleet: suffix }),
      pullDelayMs: 1_000,
    });
    all = [...real, ...fleet.ids].sort();
    await waitFor('six devices', async () => Object.keys(await onDevices(2)).length === 6, { timeoutMs: 60_000 });
  }, 180_000);

  afterAll(async () => {
    await fleet?.close();
    await stopAll();
    await balancer?.close();
    await removeContainersAndVolumes(`flotilla.app=${app}`);
    await redis?.close();
    await postgres?.close();
    for (const replica of replicas) removeDir(replica.dataDir);
    removeDir(dir);
  });

  it('runs an app applied through one replica everywhere, and completes a rollout whose leader was killed', {
    timeout: 240_000,
  }, async () => {
    const v1 = await retagInRegistry(images.v1, `v1-${app}`);
    const v2 = await retagInRegistry(images.v2, `v2-${app}`);
    await apply(1, v1);
    await waitFor(
      'v1 everywhere, seen from replica 2',
      async () => JSON.stringify(await onDevices(2)) === JSON.stringify(everywhere('1 running')),
      {
        timeoutMs: 90_000,
      },
    );
    expect(await realImages()).toEqual({ [real[0]!]: v1, [real[1]!]: v1 });
    // Remote access through every replica: for each device, two of the three relay to a device connected to another.
    for (const device of real) {
      for (const i of [0, 1, 2]) {
        const result = await cli(i, 'exec', device, app, '--', 'sh', '-c', `echo via-replica-${i}; cat /www/index.html`);
        expect({ code: result.code, stdout: result.stdout, stderr: result.stderr }, `${device} through replica ${i}`).toEqual({
          code: 0,
          stdout: `via-replica-${i}\nv1\n`,
          stderr: '',
        });
      }
    }

    // An object, not the index: waitFor retries on a falsy answer, and replica 0 may lead.
    const { leader } = await waitFor('one replica leading', async () => {
      const leading = replicas.flatMap((r, i) => (r.proc.output.includes('leading: running rollouts') ? [i] : []));
      return leading.length === 1 ? { leader: leading[0]! } : undefined;
    });
    const survivors = [0, 1, 2].filter((i) => i !== leader);
    await apply(survivors[0]!, v2, { batchSize: 1 });
    await waitFor('the rollout under way', async () => (await status(survivors[1]!)).counts.healthy >= 1, { timeoutMs: 60_000 });
    expect((await status(survivors[1]!)).phase).toBe('progressing');
    await replicas[leader]!.proc.stop(true);

    await waitFor('the rollout complete under another leader', async () => (await status(survivors[0]!)).phase === 'complete', {
      timeoutMs: 120_000,
    });
    expect((await status(survivors[1]!)).counts).toEqual({ total: 6, healthy: 6, failed: 0, reverted: 0, pending: 0, updating: 0 });
    await waitFor('v2 everywhere', async () => JSON.stringify(await onDevices(survivors[1]!)) === JSON.stringify(everywhere('2 running')), {
      timeoutMs: 60_000,
    });
    expect(await realImages()).toEqual({ [real[0]!]: v2, [real[1]!]: v2 });
  });
});
