/**
 * What `docker top` shows once the replica that relayed a `flotilla exec` is killed: the process
 * in the device's container is stopped. Two replicas on a private Redis and PostgreSQL, a real
 * agent on the Docker Engine connected to one of them, and `flotilla exec … -- sleep 1000`
 * through the other, which is then killed with SIGKILL: the surviving replica finds it gone,
 * ends the session as `hub_lost` and tells the agent to close it, and the agent ends it.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { AuditRecord, List } from '../../shared/index.js';
import { Cleanup } from '../support/cleanup.js';
import {
  type AgentProcess,
  type HubProcess,
  removeDir,
  runCli,
  scratchDir,
  spawnCli,
  startAgentProcess,
  stopAll,
} from '../support/processes.js';
import { startReplicaHubs } from '../support/replica-hubs.js';
import { waitFor } from '../support/wait.js';
import { containerIds, docker, removeContainersAndVolumes } from './support/docker-cli.js';
import { describeDocker } from './support/engine.js';
import { FleetApp } from './support/fleet-app.js';
import { ensureTestImages, retagInRegistry } from './support/images.js';

const suffix = Math.random().toString(36).slice(2, 8);
const app = `e2e-orphan-${suffix}`;
const device = `e2e-orphan-${suffix}-dev`;

describeDocker("a killed replica's exec on a real device", () => {
  const cleanup = new Cleanup();
  let replicas: HubProcess[];
  let agent: AgentProcess;
  const dir = scratchDir('flotilla-e2e-orphans-');
  const cli =
    (replica: number) =>
    (...args: string[]) =>
      runCli(['--hub', replicas[replica]!.url, ...args]);
  const fleetApp = new FleetApp(app, { fleet: suffix }, dir, { healthTimeout: '20s' });

  beforeAll(async () => {
    const images = await ensureTestImages();
    ({ replicas } = await startReplicaHubs(cleanup, { count: 2, name: `e2e_orphans_${suffix}` }));
    // The device is on replica 1; the exec goes through replica 0, which relays it over Redis.
    agent = startAgentProcess(replicas[1]!, device, { fleet: suffix }, { namePrefix: `${device}.` });
    await fleetApp.apply(cli(1), await retagInRegistry(images.v1, `v1-${app}`));
    await waitFor('the app running on the device', async () => (await fleetApp.onDevices(cli(1), [device]))[device] === '1 running', {
      timeoutMs: 90_000,
    });
  }, 180_000);

  afterAll(async () => {
    await stopAll();
    await cleanup.run();
    await removeContainersAndVolumes(`flotilla.app=${app}`);
    removeDir(dir);
  });

  it('stops the process behind the session once the surviving replica finds its replica gone', { timeout: 120_000 }, async () => {
    const [container] = await containerIds(`flotilla.app=${app}`);
    expect(container).toBeDefined();
    const exec = spawnCli('exec', ['--hub', replicas[0]!.url, 'exec', device, app, '--', 'sleep', '1000']);
    cleanup.add('exec', () => exec.stop());
    await waitFor('sleep 1000 in the container', async () => (await docker('top', container!)).includes('sleep 1000'), {
      timeoutMs: 30_000,
    });
    // The replica writes the session's audit row just after it tells the client the session is open.
    const execRecord = async () =>
      (JSON.parse((await cli(1)('audit', '-o', 'json')).stdout) as List<AuditRecord>).items.find(
        (r) => r.device === device && r.kind === 'exec',
      );
    await waitFor('the session open in the audit', async () => (await execRecord())?.outcome === 'open', { timeoutMs: 10_000 });
    await replicas[0]!.proc.stop(true);
    const killedAt = Date.now();
    await waitFor('sleep 1000 gone from the container', async () => !(await docker('top', container!)).includes('sleep 1000'), {
      timeoutMs: 50_000,
      intervalMs: 500,
    });
    const tookMs = Date.now() - killedAt;
    // The surviving replica waits 15 s of absence before it ends a replica's sessions.
    expect(tookMs).toBeGreaterThanOrEqual(15_000);
    expect(agent.proc.output).toMatch(/"outcome":"closed".*"msg":"session ended"/);
    expect(await execRecord()).toMatchObject({ outcome: 'hub_lost' });
  });
});
