/**
 * Signed desired state with the real hub and a real agent (in-process, the
 * Docker runtime pointed at a socket where no engine answers: what matters
 * here is which documents the agent accepts; test/e2e/signed-desired.test.ts
 * shows the containers are untouched).
 *
 * The hub signs each document; `GET /api/v1/hub/key` serves the key anyone can
 * check it with. An agent with that key pinned follows only what the hub
 * signed, and says why it refused anything else.
 */

import { createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import Dockerode from 'dockerode';
import type { MqttClient } from 'mqtt';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type Agent, startAgent } from '../../agent/agent.js';
import { DockerRuntime } from '../../agent/runtime/docker-runtime.js';
import { SIGNING_KEY_FILE } from '../../broker/dispatcher/signing-key.js';
import { type DesiredState, type DeviceEvent, type DeviceState, parseHubKey, signDesired, verifyDesired } from '../../shared/index.js';
import { Cleanup } from '../support/cleanup.js';
import { appSpec, deviceState } from '../support/fixtures.js';
import { http } from '../support/http.js';
import { startTestHub, type TestHub } from '../support/hub.js';
import { LogCapture } from '../support/logs.js';
import { closeClient, connectClient, Inbox } from '../support/mqtt-client.js';
import { scratchDir } from '../support/scratch.js';
import { storedEvents } from '../support/stored-telemetry.js';
import { waitFor } from '../support/wait.js';

const NO_ENGINE = '/nonexistent/docker.sock';
const topic = (deviceId: string, channel: string) => `flotilla/v1/devices/${deviceId}/${channel}`;

describe('signed desired state', () => {
  const agents = new Cleanup();
  const cleanup = new Cleanup();
  let agentDir: string;
  let hub: TestHub;

  beforeEach(async () => {
    agentDir = scratchDir('flotilla-it-agent-');
    // Closes whichever hub `hub` is by then: a test that restarts the hub replaces it.
    hub = cleanup.add('hub', () => hub.close(), await startTestHub({ logLevel: 'info' }));
  });

  afterEach(async () => {
    try {
      await agents.run();
    } finally {
      await cleanup.run();
    }
  });

  async function client(): Promise<{ mqtt: MqttClient; inbox: Inbox }> {
    const mqtt: MqttClient = await connectClient(hub.mqttUrl);
    cleanup.add('mqtt client', () => closeClient(mqtt));
    return { mqtt, inbox: new Inbox(mqtt) };
  }

  /** The retained desired document a fresh subscriber is handed. */
  async function retainedDesired(deviceId: string, where: (d: DesiredState) => boolean = () => true): Promise<DesiredState> {
    const { mqtt, inbox } = await client();
    await mqtt.subscribeAsync(topic(deviceId, 'desired'), { qos: 1 });
    const doc = await inbox.waitFor<DesiredState>(topic(deviceId, 'desired'), where);
    expect(inbox.on(topic(deviceId, 'desired'))[0]?.retain).toBe(true);
    await closeClient(mqtt);
    return doc;
  }

  async function hubKey(): Promise<string> {
    // No credentials at all: the key is public.
    const res = await http<{ hubKey: string }>(hub.httpUrl, 'GET', '/api/v1/hub/key');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json');
    return res.body.hubKey;
  }

  it('the retained desired document verifies with GET /api/v1/hub/key, and a restarted hub keeps the key and republishes it signed', async () => {
    const key = await hubKey();
    expect(key).toMatch(/^-----BEGIN PUBLIC KEY-----\n[\s\S]+\n-----END PUBLIC KEY-----\n$/);
    expect(hub.hub.hubKey).toBe(key);
    expect(statSync(join(hub.dataDir, SIGNING_KEY_FILE)).mode & 0o777).toBe(0o600);
    expect(hub.logs.matching('created the desired-state signing key')).toHaveLength(1);

    // A device reports its state; the hub issues revision 1, then revision 2 with an app.
    const { mqtt: device } = await client();
    await device.publishAsync(topic('dev-s', 'state'), JSON.stringify(deviceState('dev-s')), { qos: 1, retain: true });
    const first = await retainedDesired('dev-s');
    expect(first.revision).toBe(1);
    expect(first.signature).toEqual({ alg: 'ed25519', value: expect.stringMatching(/^[A-Za-z0-9+/]{86}==$/) });
    expect(verifyDesired(first, parseHubKey(key))).toBeUndefined();

    await http(hub.httpUrl, 'POST', '/api/v1/apps', appSpec('roof-app', { site: 'roof' }));
    const second = await retainedDesired('dev-s', (d) => d.revision === 2);
    expect(second.apps.map((a) => a.name)).toEqual(['roof-app']);
    expect(verifyDesired(second, parseHubKey(key))).toBeUndefined();
    // What a forger would need: a signature does not carry over to altered content.
    expect(verifyDesired({ ...second, apps: [] }, parseHubKey(key))).toBe('bad signature');

    // The hub restarts on the same data dir: the broker's retained store is gone, the dispatcher
    // republishes what it stored, signed with the same key (Ed25519 is deterministic: the same signature).
    await closeClient(device);
    hub = await hub.restart();
    expect(await hubKey()).toBe(key);
    expect(hub.logs.matching('created the desired-state signing key')).toEqual([]);
    const republished = await retainedDesired('dev-s');
    expect(republished).toEqual(second);
  });

  it('a hub that makes its data dir makes it owner-only: it holds the keys and hub.db', async () => {
    const fresh = join(hub.dataDir, 'new', 'data');
    const second = await startTestHub({ dataDir: fresh });
    cleanup.add('second hub', () => second.close());
    expect(statSync(fresh).mode & 0o777).toBe(0o700);
    expect(readdirSync(fresh)).toEqual(expect.arrayContaining(['admin.key', 'hub.db', 'secrets.key', SIGNING_KEY_FILE]));
  });

  it('a hub whose key file others can read refuses to start, naming the file', async () => {
    await hub.close();
    const { chmodSync } = await import('node:fs');
    chmodSync(join(hub.dataDir, SIGNING_KEY_FILE), 0o644);
    await expect(hub.restart()).rejects.toThrow(/signing-key\.pem is readable by others \(mode 0644\)/);
  });

  describe('an agent with the hub key pinned', () => {
    let agentLogs: LogCapture;
    let observer: MqttClient;
    let observed: Inbox;

    beforeEach(async () => {
      agentLogs = new LogCapture('debug');
      ({ mqtt: observer, inbox: observed } = await client());
      await observer.subscribeAsync([topic('dev-a', 'events'), topic('dev-a', 'state')], { qos: 1 });
    });

    async function launchAgent(overrides: Record<string, unknown> = {}): Promise<Agent> {
      const runtime = new DockerRuntime(new Dockerode({ socketPath: NO_ENGINE }));
      const agent = await startAgent(
        {
          deviceId: 'dev-a',
          hubUrl: hub.mqttUrl,
          dataDir: agentDir,
          logLevel: 'silent',
          labels: { site: 'lab' },
          stateIntervalMs: 50,
          hubKey: await hubKey(),
          ...overrides,
        },
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

    const reportedRevision = (revision: number) =>
      observed.waitFor<DeviceState>(topic('dev-a', 'state'), (s) => s.observedRevision === revision);
    const rejections = () =>
      observed
        .on(topic('dev-a', 'events'))
        .map((m) => m.json as DeviceEvent)
        .filter((e) => e.type === 'desired-rejected')
        .map((e) => e.message);
    const publish = (doc: DesiredState) => observer.publishAsync(topic('dev-a', 'desired'), JSON.stringify(doc), { qos: 1 });
    const hubPrivateKey = () => createPrivateKey(readFileSync(join(hub.dataDir, SIGNING_KEY_FILE)));

    it('follows what the hub signs and refuses the rest, each with an event that says why', async () => {
      const agent = await launchAgent();
      await reportedRevision(1);
      await http(hub.httpUrl, 'POST', '/api/v1/apps', appSpec('lab-app', { site: 'lab' }));
      await reportedRevision(2);
      const current = await retainedDesired('dev-a', (d) => d.revision === 2);
      expect(agentLogs.matching('new desired state').map((r) => r.revision)).toEqual([1, 2]);

      const forged = (doc: DesiredState, expected: string, count: number) =>
        publish(doc).then(() => waitFor(`rejection ${count}: ${expected}`, () => rejections().length >= count && rejections()));

      // Unsigned, and a newer revision: what anyone able to publish would try first.
      const unsigned: DesiredState = { deviceId: 'dev-a', revision: 50, issuedAt: new Date().toISOString(), apps: [] };
      expect((await forged(unsigned, 'unsigned', 1)).at(-1)).toBe('desired state revision 50 refused: unsigned');
      // Signed, but with another key.
      const otherKey = generateKeyPairSync('ed25519').privateKey;
      expect((await forged(signDesired({ ...unsigned, revision: 51 }, otherKey), 'bad signature', 2)).at(-1)).toBe(
        'desired state revision 51 refused: bad signature',
      );
      // The hub's own document, revision raised and apps emptied: the signature no longer fits.
      // A second bad signature within the minute: refused and counted, its event held back (see the flood test).
      await publish({ ...current, revision: 52, apps: [] });
      await agentLogs.waitFor('desired state revision 52 refused: bad signature');
      expect(rejections()).toHaveLength(2);
      // A genuine hub signature, for another device: not replayable here.
      await forged(signDesired({ ...current, deviceId: 'dev-b', revision: 53 }, hubPrivateKey()), 'other device', 3);
      expect(rejections().at(-1)).toBe('desired state revision 53 refused: issued for device dev-b, not this one');
      // A replay of the hub's own older document.
      const older = signDesired({ ...current, revision: 1, apps: [] }, hubPrivateKey());
      expect((await forged(older, 'older revision', 4)).at(-1)).toBe(
        'desired state revision 1 refused: revision 1 is older than the current 2',
      );

      // None of it reached the reconciler: it still runs revision 2, and said nothing else.
      expect(agent.reconciler.desiredRevision).toBe(2);
      expect(agentLogs.matching('new desired state').map((r) => r.revision)).toEqual([1, 2]);
      // The hub stored the events too (the events API is what `flotilla get events` shows).
      await waitFor('the hub stored the rejections', async () => {
        const stored = (await storedEvents(hub.httpUrl, 'dev-a')).filter((e) => e.type === 'desired-rejected');
        return stored.length === 4;
      });

      // The retained document delivered again (a reconnect) is the normal case: no event, no log above debug.
      const before = rejections().length;
      await publish(current);
      await agentLogs.waitFor('ignoring stale desired state', (r) => r.revision === 2);
      expect(rejections()).toHaveLength(before);

      // The hub's next real document is followed.
      await http(hub.httpUrl, 'POST', '/api/v1/apps', appSpec('lab-app', { site: 'lab' }, 'registry.local/sensor-gateway:2.0'));
      await reportedRevision(3);
      expect(agent.reconciler.desiredRevision).toBe(3);
    });

    it('a flood of forgeries becomes one event per reason, not one per forgery', async () => {
      await launchAgent();
      await reportedRevision(1);
      for (let i = 0; i < 200; i += 1) {
        await publish({ deviceId: 'dev-a', revision: 100 + i, issuedAt: new Date().toISOString(), apps: [] });
      }
      await waitFor('all 200 handled', () => agentLogs.matching('desired state revision 299 refused: unsigned').length === 1);
      // Give a second event, if one were coming, the time to arrive.
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(rejections()).toEqual(['desired state revision 100 refused: unsigned']);
      expect(agentLogs.records.filter((r) => r.level === 40 && String(r.msg).includes('refused'))).toHaveLength(1);
    });

    it('ignores, with a warning, a persisted desired state altered on disk; the hub’s document is then followed', async () => {
      await http(hub.httpUrl, 'POST', '/api/v1/apps', appSpec('lab-app', { site: 'lab' }));
      const first = await launchAgent();
      const { observedRevision: revision } = await observed.waitFor<DeviceState>(topic('dev-a', 'state'), (s) =>
        s.apps.some((a) => a.name === 'lab-app'),
      );
      await first.close();

      // Someone with the SD card swaps the image in the persisted document.
      const db = new Database(join(agentDir, 'agent.db'));
      const row = db.prepare("SELECT value FROM kv WHERE key = 'desired'").get() as { value: string };
      const persisted = JSON.parse(row.value) as DesiredState;
      expect(persisted.signature?.alg).toBe('ed25519');
      persisted.apps[0]!.containers[0]!.image = 'evil.example/miner:latest';
      db.prepare("UPDATE kv SET value = ? WHERE key = 'desired'").run(JSON.stringify(persisted));
      db.close();

      // Started with the hub unreachable, so only the disk could give it a desired state.
      const offline = await launchAgent({ hubUrl: 'mqtt://127.0.0.1:9' });
      const warning = await agentLogs.waitFor(
        'ignoring persisted desired state that does not verify with the pinned hub key (altered on disk, or saved before the key was pinned)',
      );
      expect(warning).toMatchObject({ revision, reason: 'bad signature', level: 40 });
      expect(offline.reconciler.desiredRevision).toBe(0);
      expect(agentLogs.matching('restored desired state from disk')).toEqual([]);
      await offline.close();

      // Back online, the hub's retained document (the same revision, untampered) is accepted.
      const online = await launchAgent();
      await waitFor(`revision ${revision} from the hub`, () => online.reconciler.desiredRevision === revision);
      expect(agentLogs.matching('new desired state').at(-1)).toMatchObject({ revision, apps: ['lab-app@1'] });
    });

    it('refuses to start with a key that is not an Ed25519 public key', async () => {
      const { privateKey } = generateKeyPairSync('ed25519');
      await expect(launchAgent({ hubKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() })).rejects.toThrow(
        /invalid agent configuration:\nhubKey: the hub key is a private key/,
      );
      await expect(launchAgent({ hubKey: 'not a key' })).rejects.toThrow(/hubKey: the hub key is not a PEM public key/);
    });
  });

  it('an agent without a pinned key says once that it does not verify, and accepts unsigned documents as before', async () => {
    const logs = new LogCapture('debug');
    const agent = await startAgent(
      { deviceId: 'dev-u', hubUrl: hub.mqttUrl, dataDir: agentDir, logLevel: 'silent', stateIntervalMs: 50 },
      { runtime: new DockerRuntime(new Dockerode({ socketPath: NO_ENGINE })), logger: logs.logger },
    );
    agents.add('agent', () => agent.close());
    await waitFor('revision 1 from the hub', () => agent.reconciler.desiredRevision === 1);
    const { mqtt } = await client();
    await mqtt.publishAsync(
      topic('dev-u', 'desired'),
      JSON.stringify({ deviceId: 'dev-u', revision: 7, issuedAt: new Date().toISOString(), apps: [] }),
      { qos: 1 },
    );
    // Accepted (the hub, seeing the device at 7, then pushes its own revision 8 past it).
    await logs.waitFor('new desired state', (r) => r.revision === 7);
    expect(logs.records.filter((r) => String(r.msg).startsWith('no hub key pinned'))).toHaveLength(1);
  });
});
