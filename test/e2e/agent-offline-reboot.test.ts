/**
 * A device reboots its agent while the hub is unreachable: the hub process is
 * stopped, the agent killed with SIGKILL and started again on the same data
 * dir. What the operator finds:
 * - `docker inspect`: the apps kept running throughout, the same containers
 *   from the same start (not restarted, not recreated);
 * - the agent's log: it restored the desired state from its disk;
 * - a container that crashes while the agent is offline is brought back by its
 *   restart policy, as the same container, and the agent leaves it so;
 * - once the hub is back, `flotilla get devices` shows the device online and
 *   `flotilla describe device` both apps running, in sync, on those same
 *   containers; the hub's stored events show no step the agent took on them
 *   after the reboot.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  type AgentProcess,
  type HubProcess,
  removeDir,
  runCli,
  startAgentProcess,
  startHubProcess,
  stopAll,
} from '../support/processes.js';
import { waitFor } from '../support/wait.js';
import { DeviceApps } from './support/device-apps.js';
import { docker, inspect, removeContainersAndVolumes } from './support/docker-cli.js';
import { describeDocker } from './support/engine.js';
import { ensureTestImages, retagInRegistry } from './support/images.js';
import { agentLog, appContainers, describeDevice, storedEvents } from './support/observe.js';

const suffix = Math.random().toString(36).slice(2, 8);
const deviceId = `e2e-offline-${suffix}`;
const steady = `e2e-offline-steady-${suffix}`;
const crashy = `e2e-offline-crashy-${suffix}`;

/** Step events that change containers; none may follow the reboot. */
const CHANGES = ['created', 'started', 'stopped', 'removed', 'stashed', 'restored', 'pulled', 'rolled-back'];

describeDocker('agent rebooted while the hub is unreachable', () => {
  let hub: HubProcess;
  let agent: AgentProcess;
  const device = new DeviceApps(() => hub, deviceId, { update: { minReadySeconds: 1 } });

  beforeAll(async () => {
    const images = await ensureTestImages();
    hub = await startHubProcess();
    agent = startAgentProcess(hub, deviceId, {}, { namePrefix: `${deviceId}.` });
    await waitFor('the agent to register', async () => (await runCli(['--hub', hub.url, 'describe', 'device', deviceId])).code === 0);
    await device.apply(steady, { image: await retagInRegistry(images.v1, `v1-${steady}`) });
    await device.apply(crashy, { image: await retagInRegistry(images.v2, `v2-${crashy}`), restartPolicy: { name: 'always' } });
    await waitFor(
      'both apps running',
      async () => {
        const view = await describeDevice(hub, deviceId);
        return view.observedRevision === view.desiredRevision && view.apps.filter((a) => a.phase === 'running').length === 2;
      },
      { timeoutMs: 60_000 },
    );
  });

  afterAll(async () => {
    await stopAll();
    await removeContainersAndVolumes(`flotilla.app=${steady}`);
    await removeContainersAndVolumes(`flotilla.app=${crashy}`);
    if (agent) removeDir(agent.dataDir);
    if (hub) removeDir(hub.dataDir);
    device.removeFiles();
  });

  it('keeps the apps running across the reboot, restores the desired state from disk, and reports unchanged once the hub is back', async () => {
    const [steadyRow] = await appContainers(steady);
    const [crashyRow] = await appContainers(crashy);
    const before = { steady: await inspect(steadyRow!.id), crashy: await inspect(crashyRow!.id) };
    const revision = (await describeDevice(hub, deviceId)).desiredRevision;

    await hub.proc.stop();
    await agent.proc.stop(true);
    expect(agent.proc.child.signalCode).toBe('SIGKILL');
    const rebootedAt = new Date().toISOString();
    await agent.restart();

    const restored = await waitFor('the agent to restore its desired state from disk', () =>
      agentLog(agent.proc).find((l) => l.msg === 'restored desired state from disk'),
    );
    expect(restored.revision).toBe(revision);

    // A crash while the agent is cut off from the hub: Docker's restart policy brings the same container back.
    const pid = Number(await docker('inspect', '--format', '{{.State.Pid}}', crashyRow!.id));
    expect(pid).toBeGreaterThan(0);
    process.kill(pid, 'SIGKILL');
    const revived = await waitFor(
      'the crashed container to be restarted by its policy',
      async () => {
        const now = await inspect(crashyRow!.id);
        return now.State.Running && now.RestartCount === 1 && now.State.StartedAt !== before.crashy.State.StartedAt && now;
      },
      { timeoutMs: 30_000 },
    );
    expect(agent.proc.running).toBe(true);

    await hub.restart();
    const view = await waitFor(
      'the device to report again, in sync',
      async () => {
        const v = await describeDevice(hub, deviceId);
        return (
          v.online &&
          v.observedRevision === revision &&
          v.lastSeen !== null &&
          v.lastSeen > rebootedAt &&
          v.apps.every((a) => a.phase === 'running') &&
          v.apps.length === 2 &&
          v
        );
      },
      { timeoutMs: 60_000 },
    );
    const devices = JSON.parse((await runCli(['--hub', hub.url, 'get', 'devices', '-o', 'json'])).stdout) as {
      items: { id: string; online: boolean }[];
    };
    expect(devices.items.find((d) => d.id === deviceId)?.online).toBe(true);
    // The reported containers are the ones that ran before the reboot.
    expect(view.apps.find((a) => a.name === steady)?.containers.map((c) => c.id)).toEqual([steadyRow!.id]);
    expect(view.apps.find((a) => a.name === crashy)?.containers.map((c) => c.id)).toEqual([crashyRow!.id]);
    expect(view.apps.find((a) => a.name === crashy)?.containers[0]?.restartCount).toBe(1);

    // What Docker says: same containers; the steady one never restarted, the crashed one once, by Docker.
    expect((await appContainers(steady)).map((r) => r.id)).toEqual([steadyRow!.id]);
    expect((await appContainers(crashy)).map((r) => r.id)).toEqual([crashyRow!.id]);
    const after = { steady: await inspect(steadyRow!.id), crashy: await inspect(crashyRow!.id) };
    expect(after.steady.State.StartedAt).toBe(before.steady.State.StartedAt);
    expect(after.steady.RestartCount).toBe(0);
    expect(after.steady.State.Running).toBe(true);
    expect(after.crashy.State.StartedAt).toBe(revived.State.StartedAt);
    expect(after.crashy.RestartCount).toBe(1);

    // The hub's record: the agent took no step on either app after the reboot.
    const events = await storedEvents(hub, deviceId);
    expect(events.filter((e) => e.ts >= rebootedAt && CHANGES.includes(e.type))).toEqual([]);
    expect(events.filter((e) => e.ts < rebootedAt && e.type === 'created').map((e) => e.app)).toEqual(
      expect.arrayContaining([steady, crashy]),
    );
  });
});
