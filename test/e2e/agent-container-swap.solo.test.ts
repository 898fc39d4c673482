/**
 * An agent that runs as a container (`install.sh --mode image`) upgrades
 * itself by swapping its container, as an operator drives it: `flotilla agent
 * upgrade --image repo@sha256:…` on a real hub process, real agent containers
 * on this engine (run as install.sh runs them, under names of this run), an
 * app running beside them.
 *
 * - N → N+1: the swap stops the old agent, starts the new one, which confirms
 *   with the hub; the app's container keeps its id and StartedAt, the hub shows
 *   the new version, and no swap container or previous agent is left.
 * - N+1 → N+2, whose agent crashes at start, with the hub stopped as soon as
 *   the swap began: N+1 runs again by itself; once the hub is back it shows
 *   `agent-rolled-back` and the device ROLLED-BACK.
 * - N → N+1 with the hub down: the new agent cannot confirm, and the swap goes
 *   back when the health timeout passes.
 * - Power cuts: a swap held before each of its steps (FLOTILLA_SWAP_HOLD_AT)
 *   and killed there with SIGKILL from the host, on the way up and on the way
 *   back, still ends on a working agent.
 *
 * Heavy (its images, several agent restarts): a solo test.
 */
import { chownSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { type HubProcess, REPO_ROOT, runCli, scratchDir, startHubProcess, stopAll } from '../support/processes.js';
import { waitFor } from '../support/wait.js';
import { agentImageProblem, buildSwapImages, type SwapImages } from './support/agent-swap-images.js';
import { docker, inspect, removeContainersAndVolumes } from './support/docker-cli.js';
import { describeDocker } from './support/engine.js';
import { ensureTestImages } from './support/images.js';

/** The version docker/build-images.sh tags the agent image with. */
const VERSION = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const suffix = Math.random().toString(36).slice(2, 8);
const site = `swap-${suffix}`;
const app = `e2e-swap-${suffix}`;
/** The agent image's user (docker/agent.Dockerfile): its data dir must be its own. */
const AGENT_UID = 10001;

interface DeviceView {
  id: string;
  online: boolean;
  host?: { agentVersion?: string };
  agentUpgrade?: { phase: string; version: string; message?: string };
  apps: { name: string; phase: string }[];
}

interface AgentUnderTest {
  deviceId: string;
  container: string;
  dataDir: string;
}

/** The agent image docker/build-images.sh pushed: the images of this test are made from it. */
const describeSwap = agentImageProblem(VERSION) ? describe.skip : describeDocker;

describeSwap('an agent that runs as a container swaps itself for a new image', () => {
  let images: SwapImages;
  let hub: HubProcess;
  const agents: AgentUnderTest[] = [];

  const devices = async (): Promise<DeviceView[]> =>
    ((await (await fetch(`${hub.url}/api/v1/devices`)).json()) as { items: DeviceView[] }).items;
  const device = async (id: string) => (await devices()).find((d) => d.id === id);
  const events = async (id: string) =>
    ((await (await fetch(`${hub.url}/api/v1/events?device=${id}`)).json()) as { events: { type: string; message: string }[] }).events;
  const containerState = async (name: string) => {
    const out = await docker('ps', '-a', '--filter', `name=^/${name}$`, '--format', '{{.ID}}');
    return out === '' ? undefined : inspect(name);
  };
  const imageOf = async (name: string) => (await docker('inspect', '--format', '{{.Image}}', name)).trim();
  /** The app's containers on one device, with when each started. */
  const appContainer = async (deviceId: string) => {
    const ids = (
      await docker('ps', '-q', '--no-trunc', '--filter', `label=flotilla.app=${app}`, '--filter', `label=flotilla.device=${deviceId}`)
    )
      .split('\n')
      .filter(Boolean);
    return Promise.all(ids.map(async (id) => ({ id, startedAt: (await inspect(id)).State.StartedAt })));
  };
  const agentLogs = async (name: string) => {
    const { execFile } = await import('node:child_process');
    return new Promise<string>((resolve) =>
      execFile('docker', ['logs', '--tail', '60', name], { maxBuffer: 16 << 20 }, (err, stdout, stderr) =>
        resolve(`${err ? err.message : ''}${stdout}${stderr}`.slice(-12000)),
      ),
    );
  };

  async function startAgentContainer(deviceId: string, image: string, env: string[] = []): Promise<AgentUnderTest> {
    const container = `flotilla-agent-e2e-${deviceId}`;
    const dataDir = scratchDir(`flotilla-swap-${deviceId}-`);
    chownSync(dataDir, AGENT_UID, AGENT_UID);
    const socketGroup = String(statSync('/var/run/docker.sock').gid);
    // As docker/install.sh --mode image runs it, with the container's name in FLOTILLA_AGENT_CONTAINER.
    await docker(
      'run',
      '-d',
      '--name',
      container,
      '--restart',
      'always',
      '--network',
      'host',
      '--label',
      `org.flotilla.install=e2e-${suffix}`,
      '--group-add',
      socketGroup,
      '-v',
      '/var/run/docker.sock:/var/run/docker.sock',
      '-v',
      `${dataDir}:/var/lib/flotilla-agent`,
      '-e',
      `FLOTILLA_AGENT_CONTAINER=${container}`,
      ...env.flatMap((e) => ['-e', e]),
      image,
      'agent',
      '--data-dir',
      '/var/lib/flotilla-agent',
      '--hub-url',
      hub.mqttUrl,
      '--device-id',
      deviceId,
      '--label',
      `site=${site}`,
      '--container-name-prefix',
      `${deviceId}-`,
      '--resync-interval',
      '2s',
    );
    const agent = { deviceId, container, dataDir };
    agents.push(agent);
    return agent;
  }

  /** Waits until the agent is online with the app running; the app's one container (id, StartedAt), to compare later. */
  async function onlineWithApp(agent: AgentUnderTest): Promise<{ id: string; startedAt: string } | undefined> {
    await waitFor(
      'the agent online with the app running',
      async () => {
        const view = await device(agent.deviceId);
        return (
          view?.online &&
          view.apps.some((a) => a.name === app && a.phase === 'running') &&
          (await appContainer(agent.deviceId)).length === 1
        );
      },
      { timeoutMs: 60_000 },
    );
    return (await appContainer(agent.deviceId))[0];
  }

  async function upgrade(deviceId: string, version: string, image: string, healthTimeout = '2m'): Promise<void> {
    const result = await runCli([
      '--hub',
      hub.url,
      'agent',
      'upgrade',
      '--device',
      deviceId,
      '--version',
      version,
      '--image',
      image,
      '--health-timeout',
      healthTimeout,
    ]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
  }

  /** The device runs `version` in its container, confirmed: no upgrade under way, nothing of the swap left. */
  async function settledOn(agent: AgentUnderTest, version: string, imageId: string, phase?: string): Promise<void> {
    await waitFor(
      `${agent.deviceId} to run ${version}, settled`,
      async () => {
        const view = await device(agent.deviceId);
        const state = await containerState(agent.container);
        return (
          view?.online === true &&
          view.host?.agentVersion === version &&
          view.agentUpgrade?.phase === phase &&
          state?.State.Running === true &&
          // The install's policy, on the new container and on an old one put back: a reboot starts it.
          state.HostConfig.RestartPolicy.Name === 'always' &&
          (await imageOf(agent.container)) === imageId &&
          (await containerState(`${agent.container}-previous`)) === undefined &&
          (await containerState(`${agent.container}-swap`)) === undefined
        );
      },
      { timeoutMs: 120_000, intervalMs: 500 },
    ).catch(async (err: Error) => {
      throw new Error(`${err.message}\n${JSON.stringify(await device(agent.deviceId))}\n${await agentLogs(agent.container)}`);
    });
  }

  /** Kills the swap (SIGKILL from the host: a power cut for it) each time it holds, before each of `steps` in turn. */
  async function killAtEachHold(agent: AgentUnderTest, steps: string[]): Promise<void> {
    const marker = join(agent.dataDir, 'upgrade/swap-held');
    const held = () => (existsSync(marker) ? readFileSync(marker, 'utf8').trim().split('\n') : []);
    for (const step of steps) {
      const pid = await waitFor(
        `the swap to hold before ${step} (held so far: ${held().join(', ')})`,
        async () => {
          if (held().at(-1) !== step) return undefined;
          const pid = Number(await docker('inspect', '--format', '{{.State.Pid}}', `${agent.container}-swap`).catch(() => '0'));
          return pid > 0 ? pid : undefined;
        },
        { timeoutMs: 90_000, intervalMs: 200 },
      ).catch(async (err: Error) => {
        throw new Error(`${err.message}\n${await agentLogs(`${agent.container}-swap`)}`);
      });
      process.kill(pid, 'SIGKILL');
    }
    expect(held()).toEqual(steps);
  }

  beforeAll(async () => {
    images = await buildSwapImages(VERSION, suffix);
    hub = await startHubProcess();
    const test = await ensureTestImages();
    const dir = scratchDir('flotilla-swap-app-');
    const spec = join(dir, 'app.yaml');
    writeFileSync(
      spec,
      stringify({ name: app, scheduling: { selectors: { site } }, spec: { containers: [{ name: 'web', image: test.v1 }] } }),
    );
    const applied = await runCli(['--hub', hub.url, 'apply', '-f', spec]);
    expect(applied.stderr).toBe('');
  }, 300_000);

  afterAll(async () => {
    for (const { container } of agents) {
      await docker('rm', '-f', container, `${container}-previous`, `${container}-swap`).catch(() => undefined);
    }
    await removeContainersAndVolumes(`flotilla.app=${app}`);
    await stopAll();
    await images?.remove();
  }, 120_000);

  it('goes to N+1 with the app untouched, then back from a crashing N+2 by itself while the hub is down', {
    timeout: 300_000,
  }, async () => {
    const agent = await startAgentContainer(`swap-a-${suffix}`, images.n.ref);
    const before = await onlineWithApp(agent);

    await upgrade(agent.deviceId, images.n1.version, images.n1.ref);
    await settledOn(agent, images.n1.version, images.n1.id);
    expect((await events(agent.deviceId)).map((e) => e.type)).toEqual(
      expect.arrayContaining(['agent-upgrade-started', 'agent-upgrade-downloaded', 'agent-upgrade-restarting', 'agent-upgraded']),
    );
    expect(await appContainer(agent.deviceId)).toEqual([before]);

    await upgrade(agent.deviceId, images.n2.version, images.n2.ref);
    await waitFor('the swap container to start', async () => (await containerState(`${agent.container}-swap`)) !== undefined, {
      timeoutMs: 60_000,
    });
    await hub.proc.stop();
    const rolledBack = join(agent.dataDir, 'upgrade/rolled-back');
    await waitFor(
      `N+1 running again with the hub down`,
      async () =>
        existsSync(rolledBack) &&
        (await containerState(agent.container))?.State.Running === true &&
        (await imageOf(agent.container)) === images.n1.id &&
        (await containerState(`${agent.container}-previous`)) === undefined,
      { timeoutMs: 120_000, intervalMs: 500 },
    );
    expect(readFileSync(rolledBack, 'utf8')).toContain(`version=${images.n2.version}\n`);
    expect(readFileSync(rolledBack, 'utf8')).toContain('reason=crashed 3 times in a row\n');

    await hub.restart();
    await settledOn(agent, images.n1.version, images.n1.id, 'rolled-back');
    const told = (await events(agent.deviceId)).filter((e) => e.type === 'agent-rolled-back');
    expect(told).toHaveLength(1);
    expect(told[0]?.message).toMatch(
      new RegExp(`^agent ${images.n2.version} \\(revision \\d+\\) rolled back to ${images.n1.version}: crashed 3 times in a row$`),
    );
    expect((await device(agent.deviceId))?.agentUpgrade).toMatchObject({ phase: 'rolled-back', version: images.n2.version });
    expect(await appContainer(agent.deviceId)).toEqual([before]);
  });
  it('a swap killed before each of its steps, on the way up and on the way back, ends on a working agent', {
    timeout: 300_000,
  }, async () => {
    const holds = ['rename', 'stop', 'create', 'start', 'watch', 'confirmed', 'rollback', 'restore'];
    const agent = await startAgentContainer(`swap-b-${suffix}`, images.n.ref, [`FLOTILLA_SWAP_HOLD_AT=${holds.join(',')}`]);
    const before = await onlineWithApp(agent);

    await upgrade(agent.deviceId, images.n1.version, images.n1.ref);
    await killAtEachHold(agent, ['rename', 'stop', 'create', 'start', 'watch', 'confirmed']);
    await settledOn(agent, images.n1.version, images.n1.id);
    expect((await events(agent.deviceId)).filter((e) => e.type === 'agent-upgraded')).toHaveLength(1);

    await upgrade(agent.deviceId, images.n2.version, images.n2.ref);
    await killAtEachHold(agent, ['rename', 'stop', 'create', 'start', 'watch', 'rollback', 'restore']);
    await settledOn(agent, images.n1.version, images.n1.id, 'rolled-back');
    expect((await events(agent.deviceId)).filter((e) => e.type === 'agent-rolled-back')).toHaveLength(1);
    expect(await appContainer(agent.deviceId)).toEqual([before]);
  });
  it('goes back by itself when the new agent cannot confirm within the health timeout (no hub)', { timeout: 300_000 }, async () => {
    // Held before it creates the new agent (the old one stopped), so the hub is down before the new one could confirm.
    const agent = await startAgentContainer(`swap-c-${suffix}`, images.n.ref, ['FLOTILLA_SWAP_HOLD_AT=create']);
    await waitFor('the agent online', async () => (await device(agent.deviceId))?.online === true, { timeoutMs: 60_000 });
    await upgrade(agent.deviceId, images.n1.version, images.n1.ref, '15s');
    await waitFor('the swap to hold before create', async () => existsSync(join(agent.dataDir, 'upgrade/swap-held')), {
      timeoutMs: 60_000,
    });
    await hub.proc.stop();
    await killAtEachHold(agent, ['create']);
    const rolledBack = join(agent.dataDir, 'upgrade/rolled-back');
    await waitFor(
      'N running again after the health timeout',
      async () =>
        existsSync(rolledBack) &&
        (await containerState(agent.container))?.State.Running === true &&
        (await imageOf(agent.container)) === images.n.id,
      { timeoutMs: 120_000, intervalMs: 500 },
    );
    expect(readFileSync(rolledBack, 'utf8')).toContain('reason=did not report healthy within the health timeout\n');
    await hub.restart();
    await settledOn(agent, images.n.version, images.n.id, 'rolled-back');
    const told = (await events(agent.deviceId)).filter((e) => e.type === 'agent-rolled-back');
    expect(told.map((e) => e.message)).toEqual([
      expect.stringMatching(`rolled back to ${images.n.version}: did not report healthy within the health timeout$`),
    ]);
  });
});
