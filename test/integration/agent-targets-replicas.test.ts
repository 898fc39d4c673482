/**
 * Agent targets on two hub replicas (`flotilla server --redis … --database …`, real processes on a
 * private Redis and PostgreSQL, one releases dir): an agent upgrade with a rollout set through the
 * replica that does not lead is planned and advanced by the leader, reaches a device connected
 * to each replica, and both replicas answer agent.targets and the rollout's status alike.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AgentTargetView, List, RolloutStatus } from '../../shared/index.js';
import { agentDevice, releasesDir } from '../support/agent-target-devices.js';
import { Cleanup } from '../support/cleanup.js';
import { http } from '../support/http.js';
import type { HubProcess } from '../support/processes.js';
import { startReplicaHubs } from '../support/replica-hubs.js';
import { waitFor } from '../support/wait.js';

/** The one running replica whose log says it leads (the dispatcher's line on gaining the lease) and not since that it stopped. */
function leaderOf(replicas: readonly HubProcess[]): number | undefined {
  const leading = replicas
    .map((r, i) => ({ i, output: r.proc.output, running: r.proc.running }))
    .filter((r) => r.running && r.output.lastIndexOf('leading: running rollouts') > r.output.lastIndexOf('no longer leading'));
  return leading.length === 1 ? leading[0]!.i : undefined;
}

describe('agent targets on hub replicas', () => {
  const cleanup = new Cleanup();
  let replicas: HubProcess[];

  beforeAll(async () => {
    const releases = releasesDir();
    ({ replicas } = await startReplicaHubs(cleanup, { count: 2, name: 'agent-targets', extraArgs: ['--releases-dir', releases] }));
  }, 90_000);
  afterAll(() => cleanup.run());

  const api = (replica: number, method: string, path: string, body?: unknown) => http(replicas[replica]!.url, method, path, body);

  it('an upgrade set through the replica that does not lead rolls out to devices on both', { timeout: 120_000 }, async () => {
    await waitFor('one replica leading', async () => leaderOf(replicas) !== undefined, { timeoutMs: 30_000 });
    const leader = leaderOf(replicas)!;
    const other = 1 - leader;
    const onLeader = await agentDevice(cleanup, replicas[leader]!.mqttUrl, 'gw-1', 'amd64', { site: 'lab' });
    const onOther = await agentDevice(cleanup, replicas[other]!.mqttUrl, 'gw-2', 'arm64', { site: 'lab' });

    const set = await api(other, 'POST', '/api/v1/agent/targets', { selectors: { site: 'lab' }, version: '0.3.0', rollout: { canary: 1 } });
    expect(set.status, JSON.stringify(set.body)).toBe(200);
    expect(set.body).toEqual({ name: 'site-lab', revision: 1, version: '0.3.0', changed: true, rollout: 'agent/site-lab' });

    for (const device of [onLeader, onOther]) {
      await waitFor(`${device.id} told 0.3.0`, () => device.sent().some((d) => d.agent?.version === '0.3.0' && d.agent.revision === 1), {
        timeoutMs: 30_000,
      });
    }
    expect(onOther.sent().at(-1)?.agent?.bundle?.url).toBe('/releases/flotilla-0.3.0-linux-arm64.tar.gz');
    const status = async (i: number) => (await api(i, 'GET', '/api/v1/agent/targets/site-lab/rollout')).body as RolloutStatus;
    await waitFor('the rollout complete', async () => (await status(other)).phase === 'complete', { timeoutMs: 30_000 });
    expect((await status(leader)).counts).toEqual({ total: 2, healthy: 2, failed: 0, reverted: 0, pending: 0, updating: 0 });

    const targets = async (i: number) => ((await api(i, 'GET', '/api/v1/agent/targets')).body as List<AgentTargetView>).items;
    await waitFor('both replicas count both devices running 0.3.0', async () => {
      const [a, b] = await Promise.all([targets(0), targets(1)]);
      return a[0]?.devices.running === 2 && JSON.stringify(a) === JSON.stringify(b);
    });
  });
});
