/**
 * A real agent (in-process, the real Docker Engine) with the hub's key
 * pinned, running a real container from a document the hub signed, is handed
 * a forged, an unsigned and a replayed desired state. Each of them, had it
 * been accepted, would have removed or replaced the container. After each,
 * `docker inspect` shows the same container, started at the same moment, and
 * the hub's side sees a `desired-rejected` event that says why.
 *
 * The forgeries are published the way an attacker with broker access would:
 * by an ordinary MQTT client (the hub allows anonymous clients on loopback).
 */
import { generateKeyPairSync } from 'node:crypto';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type Agent, startAgent } from '../../agent/agent.js';
import { type DesiredState, type DeviceEvent, type DeviceState, signDesired } from '../../shared/index.js';
import { http } from '../support/http.js';
import { startTestHub, type TestHub } from '../support/hub.js';
import { LogCapture } from '../support/logs.js';
import { closeClient, connectClient, Inbox } from '../support/mqtt-client.js';
import { scratchDir } from '../support/scratch.js';
import { waitFor } from '../support/wait.js';
import { containerIds, inspect, removeContainersAndVolumes } from './support/docker-cli.js';
import { describeDocker } from './support/engine.js';
import { ensureTestImages, type TestImages } from './support/images.js';

const suffix = Math.random().toString(36).slice(2, 8);
const deviceId = `e2e-signed-${suffix}`;
const app = `e2e-signed-${suffix}`;
const topic = (channel: string) => `flotilla/v1/devices/${deviceId}/${channel}`;

describeDocker('signed desired state on a real device', () => {
  let images: TestImages;
  let hub: TestHub;
  let agent: Agent;
  let agentDir: string;
  let observer: MqttClient;
  let observed: Inbox;
  const agentLogs = new LogCapture('debug');

  beforeAll(async () => {
    images = await ensureTestImages();
    agentDir = scratchDir('flotilla-e2e-signed-');
    hub = await startTestHub({ logLevel: 'info' });
    observer = await connectClient(hub.mqttUrl);
    observed = new Inbox(observer);
    await observer.subscribeAsync([topic('desired'), topic('events'), topic('state')], { qos: 1 });
    agent = await startAgent(
      {
        deviceId,
        hubUrl: hub.mqttUrl,
        dataDir: agentDir,
        hubKey: hub.hub.hubKey,
        containerNamePrefix: `${deviceId}.`,
        resyncIntervalMs: 500,
        stateIntervalMs: 100,
        // Every refusal its own event here, so each forgery below is seen on its own (the rate limit has its own tests).
        rejectionEventIntervalMs: 0,
        logLevel: 'silent',
      },
      { logger: agentLogs.logger },
    );
  }, 120_000);

  afterAll(async () => {
    await agent?.close();
    if (observer) await closeClient(observer);
    await hub?.close();
    await removeContainersAndVolumes(`flotilla.app=${app}`);
  });

  const desiredDocs = () => observed.on(topic('desired')).map((m) => m.json as DesiredState);
  const rejections = () =>
    observed
      .on(topic('events'))
      .map((m) => m.json as DeviceEvent)
      .filter((e) => e.type === 'desired-rejected')
      .map((e) => e.message);

  it('keeps its running container untouched and emits the rejection event for each forged, unsigned or replayed document', async () => {
    // Revision 1: the hub's first document for the new device, nothing to run yet. Kept for the replay below.
    const empty = await observed.waitFor<DesiredState>(topic('desired'), (d) => d.apps.length === 0, 30_000);

    const applied = await http(hub.httpUrl, 'POST', '/api/v1/apps', {
      name: app,
      scheduling: { devices: [deviceId] },
      spec: { containers: [{ name: 'web', image: images.v1 }] },
    });
    expect(applied.status).toBe(200);
    const running = await observed.waitFor<DeviceState>(
      topic('state'),
      (s) => s.apps.some((a) => a.name === app && a.phase === 'running'),
      60_000,
    );
    const current = desiredDocs().find((d) => d.revision === running.observedRevision)!;
    expect(current.apps.map((a) => a.name)).toEqual([app]);
    expect(current.revision).toBeGreaterThan(empty.revision);
    const [id] = await containerIds(`flotilla.app=${app}`);
    const before = await inspect(id!);
    expect(before.State.Running).toBe(true);

    const publish = (doc: DesiredState) => observer.publishAsync(topic('desired'), JSON.stringify(doc), { qos: 1 });
    const untouched = async () => {
      // A few reconcile ticks (resync every 500 ms) for anything that was let through to act.
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      expect(await containerIds(`flotilla.app=${app}`)).toEqual([id]);
      const now = await inspect(id!);
      expect(now.State.Running).toBe(true);
      expect(now.State.StartedAt).toBe(before.State.StartedAt);
      expect(now.Config.Image).toBe(images.v1);
      expect(agent.reconciler.desiredRevision).toBe(current.revision);
    };
    const refusedWith = async (message: string) => {
      await waitFor(`the event "${message}"`, () => rejections().includes(message));
      await untouched();
    };

    // Unsigned, newer, with no apps: accepted, it would remove the container.
    await publish({ deviceId, revision: current.revision + 10, issuedAt: new Date().toISOString(), apps: [] });
    await refusedWith(`desired state revision ${current.revision + 10} refused: unsigned`);

    // Signed, but not by the hub.
    const stranger = generateKeyPairSync('ed25519').privateKey;
    await publish(signDesired({ deviceId, revision: current.revision + 11, issuedAt: new Date().toISOString(), apps: [] }, stranger));
    await refusedWith(`desired state revision ${current.revision + 11} refused: bad signature`);

    // The hub's own signature on a higher revision with a tampered app list (another image).
    const tamperedApps = current.apps.map((a) => ({ ...a, containers: a.containers.map((c) => ({ ...c, image: images.v2 })) }));
    await publish({ ...current, revision: current.revision + 12, apps: tamperedApps });
    await refusedWith(`desired state revision ${current.revision + 12} refused: bad signature`);

    // A genuine, older document the hub signed (revision 1, no apps), replayed.
    expect(empty.signature?.alg).toBe('ed25519');
    await publish(empty);
    await refusedWith(
      `desired state revision ${empty.revision} refused: revision ${empty.revision} is older than the current ${current.revision}`,
    );

    // The hub stored them as events of the device, as `flotilla get events` shows them.
    await waitFor('the hub stored four rejections', async () => {
      const res = await http(hub.httpUrl, 'GET', `/api/v1/events?device=${deviceId}&since=1h`);
      return (res.body.events as DeviceEvent[]).filter((e) => e.type === 'desired-rejected').length === 4;
    });

    // And the device still follows its hub: a real update goes through.
    await http(hub.httpUrl, 'POST', '/api/v1/apps', {
      name: app,
      scheduling: { devices: [deviceId] },
      spec: { containers: [{ name: 'web', image: images.v2 }] },
    });
    await waitFor(
      'the hub’s v2 running',
      async () => {
        const ids = await containerIds(`flotilla.app=${app}`);
        if (ids.length !== 1) return false;
        const c = await inspect(ids[0]!);
        return c.State.Running && c.Config.Image === images.v2;
      },
      { timeoutMs: 60_000 },
    );
  });
});
