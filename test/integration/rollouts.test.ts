/**
 * Fleet rollouts against a real hub (Aedes, dispatcher, HTTP API, SQLite)
 * and five simulated devices: plain MQTT clients that publish retained state
 * and, on every desired document, report the app running at the revision they
 * were sent — or, for a "bad" device, `rolled-back` at the new revision, or
 * nothing at all for a silent one, or, for one whose update window is closed,
 * `pending` with `heldUntil` until it opens. Operators drive it with the real CLI.
 */
import { spawn } from 'node:child_process';
import type { MqttClient } from 'mqtt';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DesiredState, DeviceState, RolloutPolicy, RolloutStatus } from '../../shared/index.js';
import { Cleanup } from '../support/cleanup.js';
import { appSpec, deviceState } from '../support/fixtures.js';
import { http } from '../support/http.js';
import { startTestHub, type TestHub } from '../support/hub.js';
import { closeClient, connectClient, Inbox } from '../support/mqtt-client.js';
import { CLI, REPO_ROOT, runCli } from '../support/processes.js';
import { waitFor } from '../support/wait.js';

const SLOW = { timeout: 90_000 };
const IDS = ['dev-1', 'dev-2', 'dev-3', 'dev-4', 'dev-5'];
const desiredTopic = (id: string) => `flotilla/v1/devices/${id}/desired`;

const webSpec = (version: string, rollout: RolloutPolicy) => {
  const spec = appSpec('web', { site: 'roof' }, `registry.local/web:${version}`);
  return { ...spec, spec: { ...spec.spec, rollout } };
};

interface SimDevice {
  id: string;
  client: MqttClient;
  inbox: Inbox;
  /** Revisions of `web` this device fails (reports rolled-back at). */
  bad: Set<number>;
  /** Ignores desired documents (a device gone quiet). */
  silent: boolean;
  /** Revisions of `web` this device holds for its update window, with how long (ms from receiving them): it reports them pending with heldUntil, then running. */
  held: Map<number, number>;
}

describe('fleet rollouts', SLOW, () => {
  const cleanup = new Cleanup();
  let hub: TestHub;
  let devices: SimDevice[];

  beforeEach(async () => {
    hub = cleanup.add('hub', () => hub.close(), await startTestHub());
    devices = await Promise.all(IDS.map((id) => simDevice(id)));
  });

  afterEach(() => cleanup.run());

  const flotilla = (...args: string[]) => runCli(args, { env: { FLOTILLA_HUB: hub.httpUrl } });
  const api = (method: string, path: string, body?: unknown) => http(hub.httpUrl, method, path, body);
  const device = (id: string) => devices.find((d) => d.id === id)!;

  async function simDevice(id: string): Promise<SimDevice> {
    const client = await connectClient(hub.mqttUrl, { clientId: id });
    cleanup.add(`device ${id}`, () => closeClient(client));
    const sim: SimDevice = { id, client, inbox: new Inbox(client), bad: new Set(), silent: false, held: new Map() };
    const report = (observedRevision: number, apps: DeviceState['apps']) =>
      client.publish(`flotilla/v1/devices/${id}/state`, JSON.stringify(deviceState(id, { observedRevision, apps })), {
        qos: 1,
        retain: true,
      });
    client.on('message', (topic, payload) => {
      if (topic !== desiredTopic(id) || sim.silent) return;
      const desired = JSON.parse(payload.toString()) as DesiredState;
      const apps = (heldUntil?: string): DeviceState['apps'] =>
        desired.apps.map((app) => {
          if (heldUntil !== undefined && sim.held.has(app.revision)) {
            return { name: app.name, revision: app.revision, phase: 'pending', heldUntil, containers: [] };
          }
          return { name: app.name, revision: app.revision, phase: sim.bad.has(app.revision) ? 'rolled-back' : 'running', containers: [] };
        });
      const hold = Math.max(0, ...desired.apps.map((app) => sim.held.get(app.revision) ?? 0));
      if (hold === 0) return report(desired.revision, apps());
      // Its window opens `hold` ms from now: it says so until then, and swaps once it opens.
      report(desired.revision, apps(new Date(Date.now() + hold).toISOString()));
      const opening = setTimeout(() => report(desired.revision, apps()), hold);
      cleanup.add(`${id}'s window`, () => clearTimeout(opening));
    });
    await client.subscribeAsync(desiredTopic(id), { qos: 1 });
    report(0, []);
    await sim.inbox.waitFor<DesiredState>(desiredTopic(id), (d) => d.revision === 1);
    return sim;
  }

  /** The revision of `web` in the newest desired document a device was sent. */
  function sentRevision(id: string): number | undefined {
    const last = device(id).inbox.on(desiredTopic(id)).at(-1)?.json as DesiredState | undefined;
    return last?.apps.find((a) => a.name === 'web')?.revision;
  }

  async function waitSent(expected: Record<string, number>): Promise<void> {
    await waitFor(`desired revisions ${JSON.stringify(expected)}`, () =>
      Object.entries(expected).every(([id, revision]) => sentRevision(id) === revision),
    );
  }

  /** What each device would get connecting now: its retained desired document, read by a fresh subscriber. */
  async function retainedRevisions(): Promise<Record<string, number | undefined>> {
    const late = await connectClient(hub.mqttUrl);
    try {
      const inbox = new Inbox(late);
      await late.subscribeAsync('flotilla/v1/devices/+/desired', { qos: 1 });
      await waitFor('every retained desired document', () => IDS.every((id) => inbox.on(desiredTopic(id)).length > 0));
      return Object.fromEntries(
        IDS.map((id) => {
          const [message] = inbox.on(desiredTopic(id));
          expect(message?.retain).toBe(true);
          return [id, (message?.json as DesiredState | undefined)?.apps.find((a) => a.name === 'web')?.revision];
        }),
      );
    } finally {
      await closeClient(late);
    }
  }

  async function status(): Promise<RolloutStatus> {
    const res = await api('GET', '/api/v1/apps/web/rollout');
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    return res.body as RolloutStatus;
  }

  const waitPhase = (phase: RolloutStatus['phase']) =>
    waitFor(`rollout ${phase}`, async () => {
      const s = await status();
      return s.phase === phase && s;
    });

  /** Revision 1 everywhere (no rollout: there is nothing to roll from), then revision 2 under `policy`. */
  async function rollOut(policy: RolloutPolicy, beforeUpdate: () => void = () => {}): Promise<void> {
    expect((await api('POST', '/api/v1/apps', webSpec('1.0', policy))).body).toMatchObject({ revision: 1 });
    await waitSent(Object.fromEntries(IDS.map((id) => [id, 1])));
    expect((await api('GET', '/api/v1/apps/web/rollout')).status).toBe(404);
    await waitFor('revision 1 running everywhere', async () => {
      const res = await api('GET', '/api/v1/apps');
      return res.body.items[0]?.devices.running === 5;
    });
    beforeUpdate();
    expect((await api('POST', '/api/v1/apps', webSpec('2.0', policy))).body).toMatchObject({ revision: 2, changed: true });
  }

  it('updates the canary, pauses, and after resume brings every device to the new revision batch by batch', async () => {
    await rollOut({ canary: 1, pauseAfterCanary: true, batchSize: 2 });

    const paused = await waitPhase('paused');
    expect(paused.reason).toMatch(/canary done \(1\/1 healthy\)/);
    expect(paused.devices.map((d) => [d.id, d.revision, d.state, d.canary])).toEqual([
      ['dev-1', 2, 'healthy', true],
      ['dev-2', 1, 'pending', false],
      ['dev-3', 1, 'pending', false],
      ['dev-4', 1, 'pending', false],
      ['dev-5', 1, 'pending', false],
    ]);
    expect(await retainedRevisions()).toEqual({ 'dev-1': 2, 'dev-2': 1, 'dev-3': 1, 'dev-4': 1, 'dev-5': 1 });

    const table = await flotilla('rollout', 'status', 'web');
    expect(table.code).toBe(0);
    expect(table.stdout).toContain('app/web revision 2 (from 1): paused\n');
    expect(table.stdout).toContain('canary  [##########] 1/1\n');
    expect(table.stdout).toContain('fleet   [----------] 0/4\n');
    expect(table.stdout).toMatch(/\ndev-2 +fleet +1 +pending /);

    // Watch from before the resume to completion: one JSON line per change, the last one complete.
    const watcher = spawn(process.execPath, [CLI, 'rollout', 'status', 'web', '-w', '-o', 'json'], {
      cwd: REPO_ROOT,
      env: { ...process.env, FLOTILLA_HUB: hub.httpUrl },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    cleanup.add('rollout watcher', () => watcher.kill('SIGKILL'));
    let watchOut = '';
    let watchErr = '';
    watcher.stdout.on('data', (chunk: Buffer) => {
      watchOut += chunk.toString();
    });
    watcher.stderr.on('data', (chunk: Buffer) => {
      watchErr += chunk.toString();
    });
    const watchExit = new Promise<number | null>((resolve) => watcher.on('close', resolve));
    await waitFor('the first watched line', () => watchOut.includes('\n'), { timeoutMs: 30_000 });
    const resumed = await flotilla('rollout', 'resume', 'web');
    expect(resumed).toMatchObject({ code: 0, stderr: '' });
    expect(resumed.stdout).toMatch(/^app\/web rollout of revision 2: progressing\n$/);

    await waitPhase('complete');
    expect(await retainedRevisions()).toEqual(Object.fromEntries(IDS.map((id) => [id, 2])));

    expect(await watchExit, watchErr).toBe(0);
    const lines = watchOut
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line) as RolloutStatus);
    expect(lines[0]?.phase).toBe('paused');
    expect(lines.at(-1)?.phase).toBe('complete');
    // Batches of two: never more than two devices updating at once.
    for (const line of lines) expect(line.counts.updating).toBeLessThanOrEqual(2);

    const json = await flotilla('rollout', 'status', 'web', '-o', 'json');
    expect(json.code).toBe(0);
    const final = JSON.parse(json.stdout) as RolloutStatus;
    expect(final).toMatchObject({ app: 'web', revision: 2, previousRevision: 1, phase: 'complete' });
    expect(final.counts).toEqual({ total: 5, pending: 0, updating: 0, healthy: 5, failed: 0, reverted: 0 });
  });

  it('pauses when failures reach the threshold and sends the failed devices back to the previous revision', async () => {
    device('dev-2').bad.add(2);
    device('dev-3').bad.add(2);
    await rollOut({ canary: 1, batchSize: 2, failureThreshold: 2 });

    const paused = await waitPhase('paused');
    expect(paused.reason).toMatch(/^2 device\(s\) failed at revision 2 \(failureThreshold 2\): dev-2, dev-3/);
    expect(paused.devices.map((d) => [d.id, d.revision, d.state])).toEqual([
      ['dev-1', 2, 'healthy'],
      ['dev-2', 1, 'reverted'],
      ['dev-3', 1, 'reverted'],
      ['dev-4', 1, 'pending'],
      ['dev-5', 1, 'pending'],
    ]);
    expect(paused.devices[1]?.message).toBe('reported rolled-back at revision 2');
    await waitSent({ 'dev-1': 2, 'dev-2': 1, 'dev-3': 1, 'dev-4': 1, 'dev-5': 1 });
    expect(await retainedRevisions()).toEqual({ 'dev-1': 2, 'dev-2': 1, 'dev-3': 1, 'dev-4': 1, 'dev-5': 1 });
  });

  it('abort sends every device back to the previous revision; the app keeps the new revision in history', async () => {
    await rollOut({ canary: 2, pauseAfterCanary: true });
    await waitPhase('paused');
    await waitSent({ 'dev-1': 2, 'dev-2': 2, 'dev-3': 1 });

    const aborted = await flotilla('rollout', 'abort', 'web', '-o', 'json');
    expect(aborted.code, aborted.stderr).toBe(0);
    expect(JSON.parse(aborted.stdout)).toMatchObject({ phase: 'aborted', revision: 2 });
    await waitSent(Object.fromEntries(IDS.map((id) => [id, 1])));
    expect(await retainedRevisions()).toEqual(Object.fromEntries(IDS.map((id) => [id, 1])));
    expect((await status()).devices.map((d) => d.state)).toEqual(['reverted', 'reverted', 'pending', 'pending', 'pending']);
    expect((await api('GET', '/api/v1/apps/web/revisions')).body.current).toBe(2);

    // A finished rollout cannot be resumed; an unknown app is not found.
    const resume = await flotilla('rollout', 'resume', 'web');
    expect(resume.code).toBe(2);
    expect(resume.stderr).toMatch(/is aborted, not paused/);
    expect((await flotilla('rollout', 'status', 'nope')).code).toBe(3);
  });

  it('counts a silent device as failed after deviceTimeout and goes on below the threshold', async () => {
    // dev-1 (first batch) runs revision 1, then goes quiet: it is sent revision 2 and never answers.
    await rollOut({ batchSize: 2, failureThreshold: 2, deviceTimeout: '2s' }, () => {
      device('dev-1').silent = true;
    });
    const done = await waitPhase('complete');
    expect(done.devices.map((d) => [d.id, d.revision, d.state])).toEqual([
      ['dev-1', 2, 'failed'],
      ['dev-2', 2, 'healthy'],
      ['dev-3', 2, 'healthy'],
      ['dev-4', 2, 'healthy'],
      ['dev-5', 2, 'healthy'],
    ]);
    expect(done.devices[0]?.message).toBe('not healthy at revision 2 within 2s');
    expect(done.counts).toMatchObject({ healthy: 4, failed: 1 });
    // Below the threshold a failed device stays on the new revision: it converges when it comes back.
    expect(await retainedRevisions()).toEqual(Object.fromEntries(IDS.map((id) => [id, 2])));
  });

  it('does not fail a device for the time its update window keeps the new revision waiting', async () => {
    // dev-1 holds revision 2 for its window, 5 s, well past the 2 s deviceTimeout; a threshold of 1 would pause on it.
    await rollOut({ batchSize: 5, failureThreshold: 1, deviceTimeout: '2s' }, () => {
      device('dev-1').held.set(2, 5_000);
    });
    const waiting = await waitFor('dev-1 reported held, the others healthy', async () => {
      const s = await status();
      return s.devices.filter((d) => d.state === 'healthy').length === 4 && s;
    });
    expect(waiting.devices[0]).toMatchObject({ id: 'dev-1', revision: 2, state: 'updating' });
    const done = await waitPhase('complete');
    expect(done.devices.map((d) => [d.id, d.revision, d.state])).toEqual(IDS.map((id) => [id, 2, 'healthy']));
    expect(done.counts).toMatchObject({ healthy: 5, failed: 0, reverted: 0 });
  });

  it('pauses on a silent device when the threshold is one, and sends it back', async () => {
    await rollOut({ canary: 1, failureThreshold: 1, deviceTimeout: '2s' }, () => {
      device('dev-1').silent = true;
    });
    const paused = await waitPhase('paused');
    expect(paused.devices.map((d) => [d.id, d.revision, d.state])).toEqual([
      ['dev-1', 1, 'reverted'],
      ['dev-2', 1, 'pending'],
      ['dev-3', 1, 'pending'],
      ['dev-4', 1, 'pending'],
      ['dev-5', 1, 'pending'],
    ]);
    expect(await retainedRevisions()).toEqual(Object.fromEntries(IDS.map((id) => [id, 1])));
  });
});
