/**
 * A real agent (in-process) against a real hub, with the real Docker runtime
 * pointed at a socket where no engine answers: the agent must register, say
 * why it cannot run anything, follow only the newest valid desired document,
 * and keep that document across a restart while the hub is away.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import Dockerode from 'dockerode';
import type { MqttClient } from 'mqtt';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type Agent, startAgent } from '../../agent/agent.js';
import { DockerRuntime } from '../../agent/runtime/docker-runtime.js';
import type { DesiredState, DeviceState } from '../../shared/index.js';
import { Cleanup } from '../support/cleanup.js';
import { appSpec } from '../support/fixtures.js';
import { http } from '../support/http.js';
import { startTestHub, type TestHub } from '../support/hub.js';
import { LogCapture } from '../support/logs.js';
import { closeClient, connectClient, Inbox } from '../support/mqtt-client.js';
import { scratchDir } from '../support/scratch.js';
import { waitFor } from '../support/wait.js';

const NO_ENGINE = '/nonexistent/docker.sock';
/** lab-app as an agent without a reachable engine reports it. */
const unknownApp = {
  name: 'lab-app',
  revision: 1,
  phase: 'unknown',
  message: expect.stringContaining(NO_ENGINE),
  unknownSince: expect.any(String),
  containers: [],
};
const STATE = 'flotilla/v1/devices/dev-a/state';
const DESIRED = 'flotilla/v1/devices/dev-a/desired';

describe('agent ↔ hub over MQTT, no container engine reachable', () => {
  // Agents are released before hubs and clients, whatever order a test made them in:
  // an agent says goodbye to its hub on close (see the last test for why that order matters).
  const agents = new Cleanup();
  const cleanup = new Cleanup();
  let hub: TestHub;
  let agentDir: string;
  let agentLogs: LogCapture;
  let observer: MqttClient;
  let observed: Inbox;

  beforeEach(async () => {
    agentDir = scratchDir('flotilla-it-agent-');
    // Closes whichever hub `hub` is by then: a test that restarts the hub replaces it.
    hub = cleanup.add('hub', () => hub.close(), await startTestHub({ logLevel: 'info' }));
    agentLogs = new LogCapture('debug');
  });

  afterEach(async () => {
    try {
      await agents.run();
    } finally {
      await cleanup.run();
    }
  });

  async function launchAgent(hubUrl = hub.mqttUrl, deviceId = 'dev-a'): Promise<Agent> {
    const runtime = new DockerRuntime(new Dockerode({ socketPath: NO_ENGINE }));
    const agent = await startAgent(
      { deviceId, hubUrl, dataDir: agentDir, logLevel: 'silent', labels: { site: 'lab' }, stateIntervalMs: 50 },
      { runtime, logger: agentLogs.logger },
    );
    let closing: Promise<void> | undefined;
    const close = () => {
      closing ??= agent.close();
      return closing;
    };
    agents.add('agent', close);
    return { ...agent, close };
  }

  /** A plain MQTT client watching what the agent reports (and able to publish at it). */
  async function observe(url = hub.mqttUrl): Promise<void> {
    observer = await connectClient(url);
    cleanup.add('observer', () => closeClient(observer));
    observed = new Inbox(observer);
    await observer.subscribeAsync({ [STATE]: { qos: 1 }, [DESIRED]: { qos: 1 } });
  }

  const getDevice = () => http(hub.httpUrl, 'GET', '/api/v1/devices/dev-a');
  const stateWithRevision = (revision: number) => observed.waitFor<DeviceState>(STATE, (s) => s.observedRevision === revision);

  it('registers with its labels and host facts, and reports that its runtime is unreachable', async () => {
    await observe();
    await launchAgent();

    const device = await waitFor('dev-a registered and online', async () => {
      const r = await getDevice();
      return r.status === 200 && r.body.online === true && r.body.host !== null && r.body;
    });
    expect(device.labels).toEqual({ site: 'lab', arch: device.host.arch });
    expect(device.host.arch).toMatch(/^[a-z0-9]+$/);
    expect(device.reportedLabels).toEqual(device.labels);

    const state = await observed.waitFor<DeviceState>(STATE, (s) => s.runtimeError !== undefined);
    expect(state.deviceId).toBe('dev-a');
    expect(state.runtimeError).toContain('container runtime unavailable');
    expect(state.runtimeError).toContain(NO_ENGINE);
    await waitFor('runtimeError shown over HTTP', async () => (await getDevice()).body.runtimeError?.includes(NO_ENGINE));
    // The first desired document the hub issued (nothing scheduled yet) is what the agent observes.
    expect((await stateWithRevision(1)).apps).toEqual([]);
  });

  it('survives bad desired documents and follows only the newest valid revision', async () => {
    await observe();
    const agent = await launchAgent();
    await stateWithRevision(1);

    const publish = (doc: unknown) =>
      observer.publishAsync(DESIRED, typeof doc === 'string' ? doc : JSON.stringify(doc), { qos: 1, retain: false });
    const dropped = (n: number) => agentLogs.waitFor('invalid desired state dropped', () => true, n);

    await publish('{"deviceId": "dev-a", "revision": 9');
    expect((await dropped(1)).reason).toMatch(/not valid JSON/);
    await publish({ deviceId: 'dev-a', revision: 'nine', issuedAt: 'yesterday', apps: {} });
    const shape = String((await dropped(2)).reason);
    expect(shape).toContain('revision: must be integer');
    expect(shape).toContain('issuedAt: must match format "date-time"');
    await publish({ deviceId: 'dev-b', revision: 99, issuedAt: new Date().toISOString(), apps: [] });
    await agentLogs.waitFor('desired state for another device dropped');
    expect(agent.reconciler.desiredRevision).toBe(1);

    // The hub schedules an app on site=lab: revision 2 reaches the agent.
    const applied = await http(hub.httpUrl, 'POST', '/api/v1/apps', appSpec('lab-app', { site: 'lab' }));
    expect(applied.body).toEqual({ name: 'lab-app', revision: 1, changed: true });
    const state = await stateWithRevision(2);
    // No engine to look at: the app's phase is unknown (since the first failed look), never a guess.
    expect(state.apps).toEqual([{ ...unknownApp, message: expect.stringMatching(/; last seen pending$/) }]);
    expect(state.runtimeError).toContain(NO_ENGINE);
    await waitFor('hub sees observedRevision 2', async () => (await getDevice()).body.observedRevision === 2);
    const app = await http(hub.httpUrl, 'GET', '/api/v1/apps/lab-app');
    expect(app.body.devices).toEqual([{ id: 'dev-a', online: true, phase: 'unknown', message: expect.any(String), revision: 1 }]);

    // A stale (lower) revision and a replay of the current one are ignored.
    await publish({ deviceId: 'dev-a', revision: 1, issuedAt: new Date().toISOString(), apps: [] });
    await agentLogs.waitFor('ignoring stale desired state', (r) => r.revision === 1);
    await publish({ deviceId: 'dev-a', revision: 2, issuedAt: new Date().toISOString(), apps: [] });
    await agentLogs.waitFor('ignoring stale desired state', (r) => r.revision === 2);
    expect(agent.reconciler.desiredRevision).toBe(2);
    expect(agentLogs.matching('new desired state').map((r) => r.revision)).toEqual([1, 2]);
    // Its report still says revision 2 with the app: nothing it published since went backwards.
    const reports = observed.on(STATE).map((m) => m.json as DeviceState);
    expect(reports.at(-1)).toMatchObject({ observedRevision: 2, apps: [{ name: 'lab-app' }] });
    expect(reports.map((s) => s.observedRevision)).toEqual([...reports.map((s) => s.observedRevision)].sort((a, b) => a - b));
  });

  it('shows offline after close, restores its desired state from disk with the hub away, and reports it when the hub returns', async () => {
    await http(hub.httpUrl, 'POST', '/api/v1/apps', appSpec('lab-app', { site: 'lab' }));
    await observe();
    const first = await launchAgent();
    // A new device is first registered by its status (labels unknown, nothing scheduled),
    // then by its state (site=lab): the revision that carries the app is the one to reach.
    const running = await observed.waitFor<DeviceState>(STATE, (s) => s.apps.some((a) => a.name === 'lab-app'));
    const revision = running.observedRevision;
    expect(first.reconciler.desiredRevision).toBe(revision);
    await waitFor('hub sees the agent at that revision', async () => (await getDevice()).body.observedRevision === revision);
    expect((await getDevice()).body.desiredRevision).toBe(revision);

    await first.close();
    await waitFor('dev-a offline after close', async () => (await getDevice()).body.online === false);

    // What the agent persisted, read straight from its SQLite file.
    const file = join(agentDir, 'agent.db');
    expect(existsSync(file)).toBe(true);
    const raw = new Database(file, { readonly: true });
    const row = raw.prepare("SELECT value FROM kv WHERE key = 'desired'").get() as { value: string } | undefined;
    raw.close();
    const persisted = JSON.parse(row!.value) as DesiredState;
    expect(persisted).toMatchObject({ deviceId: 'dev-a', revision, apps: [{ name: 'lab-app', revision: 1 }] });

    await closeClient(observer);
    await hub.close();

    const second = await launchAgent(hub.mqttUrl);
    expect(second.reconciler.desiredRevision).toBe(revision);
    expect((await agentLogs.waitFor('restored desired state from disk')).revision).toBe(revision);

    // The hub comes back on the same port and data: the agent reconnects and reports what it kept.
    hub = await hub.restart();
    const back = await waitFor(
      `dev-a online again with observedRevision ${revision}`,
      async () => {
        const r = (await getDevice()).body;
        return r.online === true && r.observedRevision === revision && r;
      },
      { timeoutMs: 15_000 },
    );
    expect(back.apps).toEqual([unknownApp]);
    expect(back.desiredRevision).toBe(revision);

    await second.close();
    await waitFor('dev-a offline after second close', async () => (await getDevice()).body.online === false);
  });

  it('does not restore a desired state that was persisted for another device id', async () => {
    await http(hub.httpUrl, 'POST', '/api/v1/apps', appSpec('lab-app', { site: 'lab' }));
    await observe();
    const previous = await launchAgent();
    await observed.waitFor<DeviceState>(STATE, (s) => s.apps.some((a) => a.name === 'lab-app'));
    await previous.close();
    await closeClient(observer);
    await hub.close();

    // The same data dir, re-provisioned as another device, started while the hub is away:
    // dev-a's apps are not dev-b's to run.
    const renamed = await launchAgent(hub.mqttUrl, 'dev-b');
    // BUG (agent/agent.ts:66-70, agent/local-store.ts loadDesired): the document's deviceId is not checked.
    expect(renamed.reconciler.desiredRevision).toBe(0);
    expect(agentLogs.matching('restored desired state from disk', (r) => r.deviceId === 'dev-b')).toEqual([]);
  });

  // A hub that lost its database comes back empty on the same address, while the device holds a
  // revision the new hub never issued. Either way round, the device must end up running what the
  // new hub knows (no apps), at a revision above what it held: a document it accepts.
  const devicesAhead: { case: string; held: () => Promise<{ agent: Agent; revision: number }> }[] = [
    {
      case: 'the device is revisions ahead',
      held: async () => {
        await observe();
        const agent = await launchAgent();
        await stateWithRevision(1);
        await http(hub.httpUrl, 'POST', '/api/v1/apps', appSpec('lab-app', { site: 'lab' }));
        await stateWithRevision(2);
        await http(hub.httpUrl, 'POST', '/api/v1/apps', appSpec('lab-app', { site: 'lab' }, 'registry.local/sensor-gateway:2.0'));
        await stateWithRevision(3);
        return { agent, revision: 3 };
      },
    },
    {
      // The fresh hub must not issue its own revision 1 (empty) to a device that holds a revision 1
      // with an app: the agent would ignore it as a replay and keep running the app under a number
      // both sides call 1. The hub waits for the device's state and issues a revision above it.
      case: 'the device holds the same revision number with different content',
      held: async () => {
        // Scheduled by device id, so the very first revision the hub issues already carries the app.
        await http(hub.httpUrl, 'POST', '/api/v1/apps', { ...appSpec('pinned'), scheduling: { devices: ['dev-a'] } });
        await observe();
        const agent = await launchAgent();
        const first = await observed.waitFor<DeviceState>(STATE, (s) => s.apps.some((a) => a.name === 'pinned'));
        expect(first.observedRevision).toBe(1);
        return { agent, revision: 1 };
      },
    },
  ];

  async function lostDatabase(held: () => Promise<{ agent: Agent; revision: number }>): Promise<void> {
    const { agent, revision } = await held();

    await closeClient(observer);
    hub = await hub.restart({ freshDataDir: true });

    const device = await waitFor(
      'dev-a converged with the fresh hub',
      async () => {
        const view = (await getDevice()).body;
        const agrees = view.desiredRevision > revision && agent.reconciler.desiredRevision === view.desiredRevision;
        return agrees && view.observedRevision === view.desiredRevision && view;
      },
      { timeoutMs: 15_000 },
    );
    expect(device.desiredRevision).toBe(revision + 1);
    expect(device.apps).toEqual([]);
    expect(agent.reconciler.desiredRevision).toBe(revision + 1);
  }

  for (const { case: ahead, held } of devicesAhead) {
    it(`moves a device past its revision when the hub lost its database: ${ahead}`, () => lostDatabase(held));
  }

  it('finishes close() promptly when the hub went away a moment before', async () => {
    await observe();
    const agent = await launchAgent();
    await stateWithRevision(1);
    await closeClient(observer);

    // The hub disappears; the agent is stopped before its MQTT client has noticed
    // (as on a link that died silently, or a hub and agent stopped together).
    await hub.close();
    const closing = agent.close();
    const outcome = await Promise.race([
      closing.then(() => 'closed'),
      new Promise<string>((resolve) => setTimeout(() => resolve('still closing after 5 s'), 5_000).unref()),
    ]);
    if (outcome !== 'closed') {
      // Release the stuck agent for cleanup: a broker on the same port acknowledges its goodbye.
      hub = await hub.restart();
      await closing;
    }
    // BUG (agent/link.ts:63-73): close() awaits a QoS 1 PUBACK for its "offline" status with no
    // deadline, so it never resolves while the hub is unreachable.
    expect(outcome).toBe('closed');
  });
});
