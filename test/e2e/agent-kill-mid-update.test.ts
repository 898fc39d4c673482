/**
 * The agent is killed with SIGKILL in the middle of an update, at four points
 * where Docker holds a half-done swap, and started again on the same data dir.
 * Each time, what an operator sees afterwards: `docker ps` shows exactly one
 * container for the app, the new version under its own name (the leftover
 * `.prev-`/`.next-` container cleaned up or adopted, never recreated beside
 * it); `flotilla describe device` reports the new revision running and the
 * device in sync; the hub's stored events show the gate passing after the
 * restart. A background `docker ps` sampler shows that at no moment did two
 * containers of one version exist.
 *
 * Kill points, download-then-kill (the default):
 * - the new version is on trial (its minReadySeconds gate), the old one
 *   stopped and renamed `NAME.prev-…`;
 * - the old version is being stopped (it ignores SIGTERM, so `docker stop`
 *   takes its 10 s grace) and not yet renamed, the new one created beside it
 *   by the same swap step and not yet started.
 * start-then-kill:
 * - the new version is on trial beside the old one, as `NAME.next-…`;
 * - the new version passed its gate and the old one is being stopped (the
 *   handover): the new one keeps running throughout and takes the name.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { HubProcess } from '../support/processes.js';
import { removeDir, runCli, startAgentProcess, startHubProcess, stopAll } from '../support/processes.js';
import { waitFor } from '../support/wait.js';
import { DeviceApps } from './support/device-apps.js';
import { docker, inspect, removeContainersAndVolumes } from './support/docker-cli.js';
import { describeDocker } from './support/engine.js';
import { ensureTestImages, retagInRegistry, type TestImages } from './support/images.js';
import { appContainers, type ContainerRow, ContainerSampler, describeDevice, duplicates, storedEvents } from './support/observe.js';

const suffix = Math.random().toString(36).slice(2, 8);

/** The name a swap creates the new version under, beside the old one, until it takes the primary name. */
const incomingName = (primary: string) => new RegExp(`^${primary.replaceAll('.', '\\.')}\\.new-[0-9a-f]{8}$`);

/** The web image's server with SIGTERM ignored: `docker stop` then waits its whole grace period (10 s) before SIGKILL. */
const IGNORES_SIGTERM = ['/bin/sh', '-c', "trap '' TERM; httpd -f -p 80 -h /www & wait"];

/** Generous: a loaded CI machine pulls, swaps and waits out two gates and a 10 s stop grace. */
const TEST_TIMEOUT_MS = 150_000;

describeDocker('agent killed with SIGKILL in the middle of an update', () => {
  let images: TestImages;
  let hub: HubProcess;
  const apps: string[] = [];
  const dirs: string[] = [];
  const devices: DeviceApps[] = [];

  beforeAll(async () => {
    images = await ensureTestImages();
    hub = await startHubProcess();
    dirs.push(hub.dataDir);
  });

  afterAll(async () => {
    await stopAll();
    for (const app of apps) await removeContainersAndVolumes(`flotilla.app=${app}`);
    for (const dir of dirs) removeDir(dir);
    for (const device of devices) device.removeFiles();
  });

  /** A device of its own (agent, data dir, container name prefix) with one app `web` at v1, running. */
  async function deviceWithV1(name: string, strategy: string, v1: Record<string, unknown> = {}) {
    const deviceId = `e2e-kill-${name}-${suffix}`;
    const app = `e2e-kill-${name}-${suffix}`;
    apps.push(app);
    const agent = startAgentProcess(hub, deviceId, {}, { namePrefix: `${deviceId}.` });
    dirs.push(agent.dataDir);
    await waitFor('the agent to register', async () => (await runCli(['--hub', hub.url, 'describe', 'device', deviceId])).code === 0);
    const device = new DeviceApps(() => hub, deviceId, { update: { strategy } });
    devices.push(device);
    const image = { v1: await retagInRegistry(images.v1, `v1-${app}`), v2: await retagInRegistry(images.v2, `v2-${app}`) };
    await device.apply(app, { image: image.v1, ...v1 }, { minReadySeconds: 1 });
    const primary = `${deviceId}.${app}_web`;
    const [v1Row] = await waitFor(
      'v1 running alone',
      async () => {
        const state = (await describeDevice(hub, deviceId)).apps.find((a) => a.name === app);
        const rows = await appContainers(app);
        return state?.phase === 'running' && rows.length === 1 && rows[0]!.name === primary && rows[0]!.state === 'running' && rows;
      },
      { timeoutMs: 60_000 },
    );
    return { deviceId, app, agent, device, image, primary, v1Id: v1Row!.id };
  }

  /** The device converged on revision 2: one container, v2, running under its own name, reported in sync. */
  async function convergedOnV2(deviceId: string, app: string, primary: string, v2: string): Promise<ContainerRow> {
    const [row] = await waitFor(
      'the device to converge on v2 with one container',
      async () => {
        const rows = await appContainers(app);
        if (rows.length !== 1 || rows[0]!.name !== primary || rows[0]!.state !== 'running' || rows[0]!.image !== v2) return undefined;
        const view = await describeDevice(hub, deviceId);
        const state = view.apps.find((a) => a.name === app);
        return (
          view.online &&
          view.observedRevision === view.desiredRevision &&
          state?.revision === 2 &&
          state.phase === 'running' &&
          state.containers.length === 1 &&
          state.containers[0]!.id === rows[0]!.id &&
          rows
        );
      },
      { timeoutMs: 90_000 },
    );
    return row!;
  }

  /** Docker's `kill` events (a stop sends one with SIGTERM) for a container since `since` (unix seconds). */
  async function killEvents(id: string, since: number): Promise<string[]> {
    const until = `${Math.ceil(Date.now() / 1000)}`;
    const out = await docker('events', '--since', `${since}`, '--until', until, '--filter', `container=${id}`, '--filter', 'event=kill');
    return out === '' ? [] : out.split('\n');
  }

  /** What the hub stored for the app after `since`, oldest first. */
  async function eventsSince(deviceId: string, app: string, since: string): Promise<{ type: string; message: string }[]> {
    return (await storedEvents(hub, deviceId)).filter((e) => e.app === app && e.ts >= since);
  }

  /** Whole-history checks: the healthy update was never judged failed, nor rolled back. */
  async function expectNoFailure(deviceId: string, app: string): Promise<void> {
    const types = (await storedEvents(hub, deviceId)).filter((e) => e.app === app).map((e) => e.type);
    expect(types).not.toContain('health-failed');
    expect(types).not.toContain('rolled-back');
  }

  type UpdatingDevice = Awaited<ReturnType<typeof deviceWithV1>>;

  /** A moment of the update to SIGKILL the agent at, and what Docker must hold right after. */
  interface KillPoint {
    title: string;
    /** Names the device and app. */
    name: string;
    strategy: 'download-then-kill' | 'start-then-kill';
    /** v1's spec beyond its image: IGNORES_SIGTERM keeps `docker stop` of it busy for 10 s. */
    v1?: Record<string, unknown>;
    /** Long enough for the kill to land while v2 is on trial, where that is the kill point. */
    minReadySeconds: number;
    /** Waits until the update is at the kill point; `since` (unix seconds) is just before v2 was applied. */
    reached(d: UpdatingDevice, since: number): Promise<unknown>;
    /**
     * Checks the containers the kill left (`midway`: what `reached` returned). Returns the
     * container the restarted agent must adopt as v2, unchanged; none if it must create v2.
     */
    leftBehind(d: UpdatingDevice, left: ContainerRow[], midway: unknown): Promise<ContainerRow | undefined>;
    /** Event types the restarted agent must report for the app. */
    reports: string[];
  }

  const sigtermSentToV1 = (d: UpdatingDevice, since: number) =>
    waitFor('Docker to send SIGTERM to v1', async () => (await killEvents(d.v1Id, since)).length > 0, { timeoutMs: 60_000 });

  const killPoints: KillPoint[] = [
    {
      title:
        'download-then-kill, killed while the new version is on trial: the restarted agent finishes the gate and removes the stashed old one',
      name: 'trial',
      strategy: 'download-then-kill',
      minReadySeconds: 10,
      // The swap is half done: old stopped and renamed aside, new one running on trial.
      reached: (d) =>
        waitFor(
          'the old version stashed and the new one on trial',
          async () => {
            const rows = await appContainers(d.app);
            const stashed = rows.find((r) => r.name.startsWith(`${d.primary}.prev-`));
            const trial = rows.find((r) => r.name === d.primary && r.image === d.image.v2 && r.state === 'running');
            return stashed && trial && rows;
          },
          { timeoutMs: 60_000 },
        ),
      leftBehind: async (d, left, midway) => {
        const stashed = left.find((r) => r.name.startsWith(`${d.primary}.prev-`))!;
        const trial = left.find((r) => r.name === d.primary)!;
        expect(left).toHaveLength(2);
        expect(stashed).toMatchObject({ id: d.v1Id, image: d.image.v1, state: 'exited' });
        expect(trial).toMatchObject({ image: d.image.v2, state: 'running' });
        expect((midway as ContainerRow[]).map((r) => r.id).sort()).toEqual(left.map((r) => r.id).sort());
        // Kept for a rollback, but never started by the engine on its own (a reboot now would not bring it back).
        expect((await inspect(stashed.id)).HostConfig.RestartPolicy.Name).toBe('no');
        return trial;
      },
      reports: ['health-passed', 'removed'],
    },
    {
      title:
        'download-then-kill, killed in the swap while the old version is being stopped: the restarted agent removes the new one it never started and swaps again',
      name: 'stopping',
      strategy: 'download-then-kill',
      v1: { command: IGNORES_SIGTERM },
      minReadySeconds: 2,
      // The agent asked Docker to stop v1 (SIGTERM, which v1 ignores for its 10 s grace).
      reached: sigtermSentToV1,
      leftBehind: async (d, left) => {
        // The swap was cut off in the old version's stop: v1 not renamed yet, v2
        // created beside it under the incoming name and never started. The
        // restarted agent removes that one and swaps again: nothing is adopted.
        expect(left).toHaveLength(2);
        expect(left.find((r) => r.id === d.v1Id)?.name).toBe(d.primary);
        expect(left.find((r) => r.id !== d.v1Id)).toMatchObject({
          name: expect.stringMatching(incomingName(d.primary)),
          image: d.image.v2,
          state: 'created',
        });
        return undefined;
      },
      reports: ['stashed', 'created', 'started', 'health-passed', 'removed'],
    },
    {
      title: 'start-then-kill, killed while the new version runs beside the old one: the restarted agent finishes the gate and hands over',
      name: 'beside',
      strategy: 'start-then-kill',
      minReadySeconds: 10,
      reached: (d) =>
        waitFor(
          'the new version running beside the old one',
          async () => {
            const rows = await appContainers(d.app);
            const beside = rows.find((r) => r.name.startsWith(`${d.primary}.next-`) && r.state === 'running');
            const old = rows.find((r) => r.id === d.v1Id && r.name === d.primary && r.state === 'running');
            return beside && old;
          },
          { timeoutMs: 60_000 },
        ),
      leftBehind: async (d, left) => {
        expect(left).toHaveLength(2);
        const next = left.find((r) => r.name.startsWith(`${d.primary}.next-`))!;
        expect(next).toMatchObject({ image: d.image.v2, state: 'running' });
        return next;
      },
      reports: ['health-passed', 'stopped', 'removed', 'restored'],
    },
    {
      title: 'start-then-kill, killed during the handover (old version stopping): the new one keeps running and takes the name',
      name: 'handover',
      strategy: 'start-then-kill',
      v1: { command: IGNORES_SIGTERM },
      minReadySeconds: 2,
      // v2 passed its gate; the agent is stopping v1, which takes its 10 s grace.
      reached: sigtermSentToV1,
      leftBehind: async (d, left) => {
        const next = left.find((r) => r.name.startsWith(`${d.primary}.next-`))!;
        expect(next).toMatchObject({ image: d.image.v2, state: 'running' });
        expect(left.find((r) => r.id === d.v1Id)?.name).toBe(d.primary);
        return next;
      },
      reports: ['removed', 'restored'],
    },
  ];

  /** Applies v2, kills the agent at `kill`, restarts it on its data dir, and checks it finished the update. */
  async function killMidUpdate(kill: KillPoint): Promise<void> {
    const d = await deviceWithV1(kill.name, kill.strategy, kill.v1);
    const sampler = new ContainerSampler(d.app);
    const since = Math.floor(Date.now() / 1000) - 1;
    await d.device.apply(d.app, { image: d.image.v2 }, { minReadySeconds: kill.minReadySeconds });

    const midway = await kill.reached(d, since);
    await d.agent.proc.stop(true);
    expect(d.agent.proc.child.signalCode).toBe('SIGKILL');
    const adopt = await kill.leftBehind(d, await appContainers(d.app), midway);
    const adoptStartedAt = adopt && (await inspect(adopt.id)).State.StartedAt;

    const restartedAt = new Date().toISOString();
    await d.agent.restart();
    const final = await convergedOnV2(d.deviceId, d.app, d.primary, d.image.v2);
    expect(final.id).not.toBe(d.v1Id);
    if (adopt) {
      // Adopted, not recreated: the container the kill left is the one that passed, still from its first start.
      expect(final.id).toBe(adopt.id);
      expect((await inspect(final.id)).State.StartedAt).toBe(adoptStartedAt);
    }
    expect((await inspect(final.id)).HostConfig.RestartPolicy.Name).toBe('unless-stopped');

    const snapshots = await sampler.stop();
    expect(duplicates(snapshots)).toEqual([]);
    if (kill.strategy === 'download-then-kill') expect(sampler.maxRunning()).toBe(1);
    // start-then-kill: some version answered at every moment.
    else expect(snapshots.filter((rows) => !rows.some((r) => r.state === 'running'))).toEqual([]);

    const after = await waitFor(`the restarted agent to report ${kill.reports.join(', ')} and remove v1`, async () => {
      const events = await eventsSince(d.deviceId, d.app, restartedAt);
      const types = events.map((e) => e.type);
      const v1Removed = events.some((e) => e.type === 'removed' && e.message.includes(d.v1Id.slice(0, 12)));
      return kill.reports.every((t) => types.includes(t)) && v1Removed && types;
    });
    // One new container when none was left to adopt, not one per agent life; none when one was.
    expect(after.filter((t) => t === 'created')).toHaveLength(adopt ? 0 : 1);
    await expectNoFailure(d.deviceId, d.app);
  }

  for (const kill of killPoints) it(kill.title, { timeout: TEST_TIMEOUT_MS }, () => killMidUpdate(kill));
});
