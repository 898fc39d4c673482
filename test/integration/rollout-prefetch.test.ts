/**
 * Prefetch ahead of rollout stages against a real hub (Aedes, dispatcher, HTTP API, SQLite):
 * four simulated devices, plain MQTT clients that answer every desired document with a state
 * report of the apps it names (running, or `pulling` a revision the test holds them at). Three
 * report `downloads`, as an agent that downloads images itself does; the fourth does not at
 * first, as an older agent. The operator's view is read through the HTTP API and the real CLI.
 */
import type { MqttClient } from 'mqtt';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  type DesiredApp,
  type DesiredState,
  type DeviceState,
  type DownloadTotals,
  type ImageDownload,
  parseHubKey,
  type RolloutStatus,
  verifyDesired,
} from '../../shared/index.js';
import { Cleanup } from '../support/cleanup.js';
import { deviceState } from '../support/fixtures.js';
import { http } from '../support/http.js';
import { startTestHub, type TestHub } from '../support/hub.js';
import { closeClient, connectClient, Inbox } from '../support/mqtt-client.js';
import { runCli } from '../support/processes.js';
import { waitFor } from '../support/wait.js';

const SLOW = { timeout: 90_000 };
const IDS = ['dev-1', 'dev-2', 'dev-3', 'dev-4'];
const desiredTopic = (id: string) => `flotilla/v1/devices/${id}/desired`;
const WEB_1 = 'registry.local/web:1.0';
const WEB_2 = 'registry.local/web:2.0';
const PROXY = 'registry.local/proxy:1.0';
const MiB = 1024 * 1024;

const TOTALS: DownloadTotals = { bytes: 0, reusedBytes: 0, resentBytes: 0, images: 0, since: '2026-12-06T00:00:00.000Z' };

/** web (pulled with credentials from a secret) beside a proxy; `mode` changes the proxy's environment, not its image. */
function webSpec(web: string, mode = 'lenient') {
  return {
    name: 'web',
    scheduling: { selectors: { site: 'roof' } },
    spec: {
      containers: [
        { name: 'web', image: web, auth: { username: 'ci', fromSecret: 'registry-password' } },
        { name: 'proxy', image: PROXY, env: [{ name: 'MODE', value: mode }] },
      ],
      rollout: { canary: 1, batchSize: 1 },
    },
  };
}

interface SimDevice {
  id: string;
  client: MqttClient;
  inbox: Inbox;
  /** Reports `downloads`: an agent that downloads images itself and knows `prefetch`. */
  downloads: boolean;
  /** Revisions of web it reports `pulling` at rather than running. */
  held: Set<number>;
  /** The `images` entries it reports. */
  images: ImageDownload[];
  /** Sends its state report for the newest desired document again (after the test changed it). */
  report(): void;
}

describe('prefetch ahead of rollout stages', SLOW, () => {
  const cleanup = new Cleanup();
  let hub: TestHub;
  let devices: SimDevice[];

  beforeEach(async () => {
    hub = cleanup.add('hub', () => hub.close(), await startTestHub());
    devices = await Promise.all(IDS.map((id) => simDevice(id, id !== 'dev-4')));
  });

  afterEach(() => cleanup.run());

  const api = (method: string, path: string, body?: unknown) => http(hub.httpUrl, method, path, body);
  const flotilla = (...args: string[]) => runCli(args, { env: { FLOTILLA_HUB: hub.httpUrl } });
  const device = (id: string) => devices.find((d) => d.id === id)!;

  async function simDevice(id: string, downloads: boolean): Promise<SimDevice> {
    const client = await connectClient(hub.mqttUrl, { clientId: id });
    cleanup.add(`device ${id}`, () => closeClient(client));
    const inbox = new Inbox(client);
    let latest: DesiredState | undefined;
    const sim: SimDevice = {
      id,
      client,
      inbox,
      downloads,
      held: new Set(),
      images: [],
      report() {
        const apps: DeviceState['apps'] = (latest?.apps ?? []).map((app) => ({
          name: app.name,
          revision: app.revision,
          phase: sim.held.has(app.revision) ? 'pulling' : 'running',
          containers: sim.held.has(app.revision)
            ? []
            : app.containers.map((c) => ({ name: c.name, id: `${id}-${c.name}`, image: c.image, state: 'running', restartCount: 0 })),
        }));
        const state = deviceState(id, {
          observedRevision: latest?.revision ?? 0,
          apps,
          ...(sim.downloads ? { downloads: TOTALS } : {}),
          ...(sim.images.length > 0 ? { images: sim.images } : {}),
        });
        client.publish(`flotilla/v1/devices/${id}/state`, JSON.stringify(state), { qos: 1, retain: true });
      },
    };
    client.on('message', (topic, payload) => {
      if (topic !== desiredTopic(id)) return;
      latest = JSON.parse(payload.toString()) as DesiredState;
      sim.report();
    });
    await client.subscribeAsync(desiredTopic(id), { qos: 1 });
    sim.report();
    await inbox.waitFor<DesiredState>(desiredTopic(id), (d) => d.revision === 1);
    return sim;
  }

  /** The newest desired document a device was sent. */
  const newest = (id: string) => device(id).inbox.on(desiredTopic(id)).at(-1)?.json as DesiredState | undefined;
  const web = (id: string): DesiredApp | undefined => newest(id)?.apps.find((a) => a.name === 'web');

  /** Waits until every named device's newest document has web at that revision, with a prefetch (true) or without. */
  async function waitSent(expected: Record<string, [revision: number, prefetch: boolean]>): Promise<void> {
    await waitFor(
      `desired web ${JSON.stringify(expected)}`,
      () =>
        Object.entries(expected).every(
          ([id, [revision, prefetch]]) => web(id)?.revision === revision && (web(id)?.prefetch !== undefined) === prefetch,
        ),
      { timeoutMs: 20_000 },
    );
  }

  async function rollout(): Promise<RolloutStatus> {
    const res = await api('GET', '/api/v1/apps/web/rollout');
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    return res.body as RolloutStatus;
  }

  it('sends pending devices the new images ahead of their stage, signed, and takes them back when updating and on abort', async () => {
    expect((await api('PUT', '/api/v1/secrets/registry-password', { value: 's3cret' })).status).toBe(200);
    expect((await api('POST', '/api/v1/apps', webSpec(WEB_1))).body).toMatchObject({ revision: 1 });
    await waitSent(Object.fromEntries(IDS.map((id) => [id, [1, false]])));
    await waitFor('revision 1 running everywhere', async () => (await api('GET', '/api/v1/apps')).body.items[0]?.devices.running === 4);

    // Every device would stay updating at revision 2 until the test lets it go.
    for (const sim of devices) sim.held.add(2);
    expect((await api('POST', '/api/v1/apps', webSpec(WEB_2))).body).toMatchObject({ revision: 2, changed: true });

    // The canary is told to run revision 2; the pending devices that can prefetch get its new image, credentials resolved;
    // the older agent is sent nothing it does not know.
    await waitSent({ 'dev-1': [2, false], 'dev-2': [1, true], 'dev-3': [1, true], 'dev-4': [1, false] });
    const hubKey = parseHubKey(hub.hub.hubKey);
    for (const id of ['dev-2', 'dev-3']) {
      expect(web(id)?.prefetch).toEqual({ revision: 2, images: [{ image: WEB_2, auth: { username: 'ci', password: 's3cret' } }] });
      expect(web(id)?.containers.map((c) => c.image)).toEqual([WEB_1, PROXY]);
      expect(verifyDesired(newest(id)!, hubKey)).toBeUndefined();
    }
    expect(Object.keys(web('dev-4')!)).not.toContain('prefetch');
    expect((await rollout()).devices.map((d) => [d.id, d.state])).toEqual([
      ['dev-1', 'updating'],
      ['dev-2', 'pending'],
      ['dev-3', 'pending'],
      ['dev-4', 'pending'],
    ]);

    // Paused, the rollout still prefetches: the older agent, upgraded, reports downloads and gets its prefetch then.
    expect((await api('POST', '/api/v1/apps/web/rollout/pause')).status).toBe(200);
    device('dev-4').downloads = true;
    device('dev-4').report();
    await waitSent({ 'dev-4': [1, true] });
    expect(verifyDesired(newest('dev-4')!, hubKey)).toBeUndefined();
    expect((await api('POST', '/api/v1/apps/web/rollout/resume')).status).toBe(200);

    // The canary becomes healthy, so the first batch (dev-2) updates: it runs revision 2 now, without a prefetch.
    device('dev-1').held.delete(2);
    device('dev-1').report();
    await waitSent({ 'dev-1': [2, false], 'dev-2': [2, false], 'dev-3': [1, true], 'dev-4': [1, true] });
    expect(verifyDesired(newest('dev-2')!, hubKey)).toBeUndefined();

    // What the devices report of the images reaches rollout status and describe device.
    const since = new Date().toISOString();
    const prefetching: ImageDownload = {
      image: WEB_2,
      app: 'web',
      revision: 2,
      prefetch: true,
      state: 'downloading',
      via: 'agent',
      bytes: 12 * MiB,
      total: 48 * MiB,
      reusedBytes: 2 * MiB,
      resentBytes: 0,
      rate: 256 * 1024,
      since,
    };
    device('dev-1').images = [{ ...prefetching, prefetch: false, state: 'present', bytes: 48 * MiB }];
    device('dev-1').report();
    device('dev-3').images = [prefetching];
    device('dev-3').report();
    const status = await waitFor('the reported images in the rollout', async () => {
      const s = await rollout();
      return s.devices.find((d) => d.id === 'dev-3')?.images?.state === 'downloading' && s.downloads?.bytes === 60 * MiB && s;
    });
    expect(status.downloads).toEqual({ bytes: 60 * MiB, reusedBytes: 4 * MiB, resentBytes: 0, ready: 1 });
    // dev-2 pulls revision 2 and reports no container meanwhile; the pending ones run the proxy, the canary both.
    expect(status.devices.map((d) => [d.id, d.images?.present, d.images?.count])).toEqual([
      ['dev-1', 2, 2],
      ['dev-2', 0, 2],
      ['dev-3', 1, 2],
      ['dev-4', 1, 2],
    ]);
    const table = await flotilla('rollout', 'status', 'web');
    expect(table).toMatchObject({ code: 0, stderr: '' });
    expect(table.stdout).toContain('images: 1/4 devices hold them; downloaded 60.0 MiB, reused 4.0 MiB by layer sharing, resent 0 B\n');
    expect(table.stdout).toMatch(/\ndev-1 +canary +2 +healthy +\S+ +present\n/);
    expect(table.stdout).toMatch(/\ndev-3 +fleet +1 +pending +\S+ +\[##--------\] 25% at 256\.0 KiB\/s\n/);
    const described = await flotilla('describe', 'device', 'dev-3');
    expect(described).toMatchObject({ code: 0, stderr: '' });
    expect(described.stdout).toMatch(
      /\n {2}registry\.local\/web:2\.0 +prefetch web@2 +downloading +\[##--------\] 12\.0 MiB of 48\.0 MiB \(25%\) +256\.0 KiB\/s +2\.0 MiB +0 B\n/,
    );
    expect(described.stdout).toContain('Downloads:\n  Received:    0 B since 2026-12-06T00:00:00Z (0 images completed)\n');

    // An abort sends everyone back to revision 1: nothing is to be prefetched any more.
    expect((await api('POST', '/api/v1/apps/web/rollout/abort')).status).toBe(200);
    await waitSent({ 'dev-1': [1, false], 'dev-2': [1, false], 'dev-3': [1, false], 'dev-4': [1, false] });
    for (const id of IDS) expect(verifyDesired(newest(id)!, hubKey)).toBeUndefined();
  });

  it('never sends a prefetch to a device that does not report downloads, nor one whose new revision has no new image', async () => {
    expect((await api('PUT', '/api/v1/secrets/registry-password', { value: 's3cret' })).status).toBe(200);
    expect((await api('POST', '/api/v1/apps', webSpec(WEB_1))).body).toMatchObject({ revision: 1 });
    await waitFor('revision 1 running everywhere', async () => (await api('GET', '/api/v1/apps')).body.items[0]?.devices.running === 4);
    for (const sim of devices) sim.held.add(2);

    // Revision 2 changes only an environment variable: its images are those every device runs.
    expect((await api('POST', '/api/v1/apps', webSpec(WEB_1, 'strict'))).body).toMatchObject({ revision: 2, changed: true });
    await waitSent({ 'dev-1': [2, false], 'dev-2': [1, false], 'dev-3': [1, false], 'dev-4': [1, false] });

    // Revision 3 has a new image: the older agent, alone, gets none.
    for (const sim of devices) sim.held.add(3);
    expect((await api('POST', '/api/v1/apps', webSpec(WEB_2))).body).toMatchObject({ revision: 3, changed: true });
    await waitSent({ 'dev-2': [1, true], 'dev-3': [1, true] });
    const sent = device('dev-4')
      .inbox.on(desiredTopic('dev-4'))
      .map((m) => m.json as DesiredState);
    expect(sent.length).toBeGreaterThan(0);
    for (const desired of sent) for (const app of desired.apps) expect(Object.keys(app)).not.toContain('prefetch');
  });
});
