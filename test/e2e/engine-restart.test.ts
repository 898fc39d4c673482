/**
 * The Docker Engine restarts under a running agent (a package upgrade, a
 * crash, `systemctl restart docker`), or together with it (the device
 * reboots). The engine is one of our own (support/dedicated-engine.ts), so
 * stopping it disturbs no other test file.
 *
 * Engine restart, agent running. While the engine is down: the agent keeps
 * running, logs that it cannot reach the engine, and `flotilla describe
 * device` shows a runtime error. Once the engine is back: Docker's restart
 * policies (unless-stopped, the default, and always) have started the same
 * containers again, the agent adopts them without creating any (no duplicate
 * at any moment, per a `docker ps` sampler), the runtime error clears, and the
 * device reports both apps running and in sync.
 *
 * Device reboot in the middle of an update (agent killed, engine restarted,
 * agent started again), restart policy `always`: the engine brings back only
 * the new version on trial, not the old one stashed for a rollback; the agent
 * finishes the gate and commits. (Docker restarts an `always` container at
 * engine start even after a `docker stop`: a stash keeping that policy came
 * back and ran beside the new version; with a host port the two raced for it,
 * and when the stash won, the new version's failed start rolled the update back.)
 *
 * Engine restart, agent running, in the middle of an update: the new version
 * on trial is stopped by the engine, not by a fault of its own, so it is not
 * rolled back; the engine starts it again and, once through its gate, it is
 * committed. The agent sees it exit while the engine shuts down (on the
 * connection it already has open), and must not count that as a failure. A
 * version that really fails (it exits by itself once the engine is back) is
 * still rolled back, to the very container that ran before.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { DeviceView } from '../../shared/index.js';
import { type HubProcess, type ManagedProcess, runCli, spawnCli, startHubProcess, stopAll } from '../support/processes.js';
import { scratchDir } from '../support/scratch.js';
import { waitFor } from '../support/wait.js';
import { type DedicatedEngine, startDedicatedEngine } from './support/dedicated-engine.js';
import { DeviceApps } from './support/device-apps.js';
import { describeDocker } from './support/engine.js';
import { ensureTestImages, retagInRegistry } from './support/images.js';
import {
  agentLog,
  appContainers,
  type ContainerRow,
  ContainerSampler,
  describeDevice,
  describeDeviceText,
  duplicates,
  storedEvents,
} from './support/observe.js';

const suffix = Math.random().toString(36).slice(2, 8);
const deviceId = `e2e-engine-${suffix}`;
const apps = { unlessStopped: `e2e-engine-default-${suffix}`, always: `e2e-engine-always-${suffix}` };
const updated = `e2e-engine-update-${suffix}`;

describeDocker('Docker Engine restarted under a running agent', () => {
  let engine: DedicatedEngine | undefined;
  let hub: HubProcess;
  let agent: ManagedProcess;
  const dataDir = scratchDir(`flotilla-agent-${deviceId}-`);
  const device = new DeviceApps(() => hub, deviceId, { update: { minReadySeconds: 1 } });

  const image = { v1: '', v2: '' };

  /** The app's containers once the device reports it running on exactly one running container. */
  /**
   * Waits until the engine runs exactly one container of `app` and the device's view and report of
   * `app` satisfy `accept`; gives back that container's row and the report.
   */
  function settledAlone(
    app: string,
    what: string,
    accept: (view: DeviceView, reported: DeviceView['apps'][number], row: ContainerRow) => boolean,
    timeoutMs = 60_000,
  ) {
    return waitFor(
      what,
      async () => {
        const rows = await appContainers(app, engine!.host);
        const view = await describeDevice(hub, deviceId);
        const reported = view.apps.find((a) => a.name === app);
        const row = rows.length === 1 && rows[0]!.state === 'running' ? rows[0] : undefined;
        return reported !== undefined && row !== undefined && accept(view, reported, row) && { rows: [row], state: reported };
      },
      { timeoutMs },
    );
  }

  async function runningAlone(app: string, what: string) {
    return (await settledAlone(app, what, (_view, reported) => reported.phase === 'running')).rows;
  }

  function startAgent(): ManagedProcess {
    agent = spawnCli(
      `agent ${deviceId}`,
      ['agent', '--device-id', deviceId, '--hub-url', hub.mqttUrl, '--data-dir', dataDir, '--resync-interval', '2s'],
      { DOCKER_HOST: engine!.host },
    );
    return agent;
  }

  beforeAll(async () => {
    const images = await ensureTestImages();
    engine = await startDedicatedEngine();
    // Tags of our own: the shared engine gets them only for the copy and untags them after.
    image.v1 = await retagInRegistry(images.v1, `engine-v1-${suffix}`);
    image.v2 = await retagInRegistry(images.v2, `engine-v2-${suffix}`);
    await engine.loadImage(image.v1);
    await engine.loadImage(image.v2);
    hub = await startHubProcess();
    startAgent();
    await waitFor('the agent to register', async () => (await runCli(['--hub', hub.url, 'describe', 'device', deviceId])).code === 0);
  }, 180_000);

  afterAll(async () => {
    await stopAll();
    await engine?.destroy();
    device.removeFiles();
  });

  it('keeps the agent running through the outage, reports it, and re-adopts the same containers', { timeout: 150_000 }, async () => {
    const e = engine!;
    await device.apply(apps.unlessStopped, { image: image.v1 });
    await device.apply(apps.always, { image: image.v1, restartPolicy: { name: 'always' } });
    await waitFor(
      'both apps running',
      async () => {
        const view = await describeDevice(hub, deviceId);
        return view.observedRevision === view.desiredRevision && view.apps.filter((a) => a.phase === 'running').length === 2;
      },
      { timeoutMs: 60_000 },
    );
    const before = new Map<string, string>();
    for (const app of Object.values(apps)) {
      const rows = await appContainers(app, e.host);
      expect(rows).toHaveLength(1);
      expect(rows[0]!.state).toBe('running');
      before.set(app, rows[0]!.id);
    }
    const samplers = Object.values(apps).map((app) => new ContainerSampler(app, e.host));
    const agentPid = agent.child.pid;
    const outageAt = new Date().toISOString();

    await e.stop();
    const stoppedAt = Date.now();
    // While the engine is down: the agent lives on, says so in its log and in its reported state, at its
    // next look (its event stream ends with the engine; the resync interval here is 2 s).
    const down = await waitFor(
      'the device to report a runtime error',
      async () => {
        const view = await describeDevice(hub, deviceId);
        return view.runtimeError !== undefined && view;
      },
      { timeoutMs: 10_000 },
    );
    expect(down.runtimeError).toMatch(/^container runtime unavailable: /);
    // In the same report: no app is trusted to be running; each is unknown since the engine went away.
    expect(down.apps.map((app) => app.phase)).toEqual(['unknown', 'unknown']);
    for (const app of down.apps) {
      expect(Date.parse(app.unknownSince!)).toBeGreaterThanOrEqual(Date.parse(outageAt));
      // What was seen last: running, or exited if the engine stopped the containers before it went.
      expect(app.message).toMatch(/^container runtime unavailable: .*\(since .*\); last seen (running|failed)$/);
      expect(app.containers).toHaveLength(1);
    }
    expect(await describeDeviceText(hub, deviceId)).toMatch(/^Runtime Error:\s+container runtime unavailable: /m);
    expect(agent.running).toBe(true);
    const messages = agentLog(agent).map((l) => l.msg);
    expect(messages).toContain('cannot observe containers; will retry');
    expect(messages).toContain('Docker event stream ended; re-subscribing');

    // Down for 20 s in all: the report stays unknown since the same moment, not a stale running.
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, stoppedAt + 20_000 - Date.now())));
    const stillDown = await describeDevice(hub, deviceId);
    expect(stillDown.runtimeError).toMatch(/^container runtime unavailable: /);
    expect(stillDown.apps.map((app) => [app.phase, app.unknownSince])).toEqual(down.apps.map((app) => ['unknown', app.unknownSince]));

    await e.start();
    const view = await waitFor(
      'the device to recover: no runtime error, both apps running on their containers',
      async () => {
        const v = await describeDevice(hub, deviceId);
        if (v.runtimeError !== undefined || v.observedRevision !== v.desiredRevision) return undefined;
        const running = Object.values(apps).every((app) => {
          const state = v.apps.find((a) => a.name === app);
          return state?.phase === 'running' && state.containers.length === 1 && state.containers[0]!.id === before.get(app);
        });
        return running && v;
      },
      { timeoutMs: 60_000 },
    );
    expect(view.online).toBe(true);
    expect(agent.running).toBe(true);
    expect(agent.child.pid).toBe(agentPid);

    for (const [app, id] of before) {
      const rows = await appContainers(app, e.host);
      expect(rows.map((r) => ({ id: r.id, state: r.state }))).toEqual([{ id, state: 'running' }]);
    }
    for (const sampler of samplers) {
      const snapshots = await sampler.stop();
      expect(duplicates(snapshots)).toEqual([]);
      expect(sampler.maxRunning()).toBe(1);
    }
    // Docker brought them back; the agent created nothing and removed nothing.
    const changes = (await storedEvents(hub, deviceId)).filter(
      (ev) => ev.ts >= outageAt && ['created', 'removed', 'stashed', 'restored', 'rolled-back'].includes(ev.type),
    );
    expect(changes).toEqual([]);
  });

  it('device reboot in the middle of an update: the engine brings back only the version on trial, and the agent commits it', {
    timeout: 180_000,
  }, async () => {
    const e = engine!;
    // No host port: with one, the two versions race for it at boot and either may lose; without, both would run.
    const spec = { restartPolicy: { name: 'always' } };
    await device.apply(updated, { image: image.v1, ...spec });
    const primary = `${updated}_web`;
    const [v1] = await runningAlone(updated, 'v1 running');
    const sampler = new ContainerSampler(updated, e.host);
    await device.apply(updated, { image: image.v2, ...spec }, { minReadySeconds: 15 });
    const trial = await waitFor(
      'v1 stashed and v2 on trial',
      async () => {
        const rows = await appContainers(updated, e.host);
        const stashed = rows.find((r) => r.id === v1!.id && r.name.startsWith(`${primary}.prev-`) && r.state === 'exited');
        const next = rows.find((r) => r.name === primary && r.image === image.v2 && r.state === 'running');
        return stashed && next;
      },
      { timeoutMs: 60_000 },
    );

    // Power cut: the agent dies with everything else; the engine stops its containers and starts again.
    agent.child.kill('SIGKILL');
    await agent.exited;
    await e.stop();
    await e.start();
    // The engine answers once it has started what its restart policies bring back; the agent is not back yet.
    const booted = await appContainers(updated, e.host);
    expect(booted.find((r) => r.id === trial.id)?.state).toBe('running');
    expect(booted.find((r) => r.id === v1!.id)?.state).toBe('exited');

    startAgent();
    const {
      rows: [final],
    } = await settledAlone(
      updated,
      'revision 2 committed, the stash removed',
      (view, reported) => view.observedRevision === view.desiredRevision && reported.revision === 2 && reported.phase === 'running',
      90_000,
    );
    expect(final!.id).toBe(trial.id);
    expect(final!.image).toBe(image.v2);
    const snapshots = await sampler.stop();
    expect(duplicates(snapshots)).toEqual([]);
    expect(sampler.maxRunning()).toBe(1);
    const types = (await storedEvents(hub, deviceId)).filter((ev) => ev.app === updated).map((ev) => ev.type);
    expect(types).not.toContain('rolled-back');
    expect(types).not.toContain('health-failed');
  });

  it('engine restarted under the agent while an update is on trial: the version is committed, not rolled back', {
    timeout: 180_000,
  }, async () => {
    const e = engine!;
    const app = `e2e-engine-trial-${suffix}`;
    await device.apply(app, { image: image.v1 });
    await runningAlone(app, 'v1 running');
    const sampler = new ContainerSampler(app, e.host);
    await device.apply(app, { image: image.v2 }, { minReadySeconds: 15 });
    const trial = await waitFor(
      'v2 on trial',
      async () => (await appContainers(app, e.host)).find((r) => r.image === image.v2 && r.state === 'running'),
      { timeoutMs: 60_000 },
    );
    const restartAt = new Date().toISOString();

    // Well inside its 15 s without a restart: the engine stops it as it goes, and starts it again when it is back.
    await e.stop();
    await e.start();
    const { rows, state } = await settledAlone(
      app,
      'v2 committed and alone',
      (view, reported, row) =>
        view.runtimeError === undefined &&
        view.observedRevision === view.desiredRevision &&
        reported.revision === 2 &&
        reported.phase === 'running' &&
        reported.containers.map((c) => c.id).join() === row.id,
      90_000,
    );
    expect(rows[0]).toMatchObject({ id: trial.id, image: image.v2, name: `${app}_web` });
    expect(state.message).toBeUndefined();
    const gate = (await storedEvents(hub, deviceId)).filter((ev) => ev.app === app && ev.ts >= restartAt).map((ev) => ev.type);
    expect(gate).toContain('health-passed');
    expect(gate).not.toContain('rolled-back');
    // Nothing failed: no health failure, and no step tried on the engine while it went away.
    expect(gate.filter((type) => type.endsWith('-failed'))).toEqual([]);
    const messages = agentLog(agent).map((l) => l.msg);
    expect(messages).toContain('cannot observe containers; will retry');
    const snapshots = await sampler.stop();
    expect(duplicates(snapshots)).toEqual([]);
    expect(sampler.maxRunning()).toBe(1);
  });

  it('engine restarted under the agent while an update is on trial: a version that then fails by itself is still rolled back', {
    timeout: 180_000,
  }, async () => {
    const e = engine!;
    const app = `e2e-engine-failing-${suffix}`;
    await device.apply(app, { image: image.v1 });
    const [v1] = await runningAlone(app, 'v1 running');
    // Leaves on SIGTERM (the engine's stop) at once; otherwise it exits 3 after 8 s of every start, inside its 15 s trial.
    const failing = { image: image.v2, command: ['/bin/sh', '-c', "trap 'exit 0' TERM; sleep 8 & wait; exit 3"] };
    await device.apply(app, failing, { minReadySeconds: 15 });
    await waitFor(
      'v2 on trial',
      async () => (await appContainers(app, e.host)).some((r) => r.image === image.v2 && r.state === 'running'),
      { timeoutMs: 60_000 },
    );

    await e.stop();
    await e.start();
    const backAt = new Date().toISOString();
    const { rows, state } = await settledAlone(
      app,
      'revision 2 rolled back to v1',
      (view, reported, row) =>
        view.runtimeError === undefined && reported.phase === 'rolled-back' && reported.containers.map((c) => c.id).join() === row.id,
      90_000,
    );
    expect(rows[0]).toMatchObject({ id: v1!.id, image: image.v1, name: `${app}_web` });
    expect(state.message).toMatch(
      /^revision 2 failed its health gate \(container web (exited with code 3|restarted 1 time\(s\))\); revision 1 runs again$/,
    );
    // Judged on what it did once the engine was back, not on the engine's stop.
    const failed = (await storedEvents(hub, deviceId)).filter((ev) => ev.app === app && ev.type === 'health-failed');
    expect(failed).toHaveLength(1);
    expect(failed[0]!.ts >= backAt).toBe(true);
    expect(failed[0]!.message).not.toMatch(/code (0|143)\b/);
  });
});
