/**
 * The dispatcher hands desired documents to the broker a chunk at a time,
 * each chunk after the broker has taken the previous one: after a restart,
 * and after a sync touching many devices. Real stores (SQLite in memory); the
 * hub's bus is a fake that takes a message only when told.
 */

import { generateKeyPairSync } from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Dispatcher } from '../../broker/dispatcher/dispatcher.js';
import { Rollouts } from '../../broker/dispatcher/rollouts.js';
import { desiredHash } from '../../broker/dispatcher/scheduling.js';
import type { HubBus } from '../../broker/mqtt/hub-bus.js';
import { SecretCipher } from '../../broker/store/secret-cipher.js';
import { SqliteAppStore } from '../../broker/store/sqlite/apps.js';
import { openDatabase } from '../../broker/store/sqlite/db.js';
import { SqliteDeviceStore } from '../../broker/store/sqlite/devices.js';
import { SqliteRolloutStore } from '../../broker/store/sqlite/rollouts.js';
import { SqliteSecretStore } from '../../broker/store/sqlite/secrets.js';
import { type DesiredState, Topics, validateAppSpec, verifyDesired } from '../../shared/index.js';
import { appSpec, deviceState } from '../support/fixtures.js';
import { LogCapture } from '../support/logs.js';

interface Sent {
  deviceId: string;
  revision: number;
  /** What verifying with the hub's public key said: undefined when it verified. */
  signature: string | undefined;
  ack: () => void;
}

const hubKey = generateKeyPairSync('ed25519');

/** Records publishes; `ackAll` lets the broker take every one not yet taken. */
class FakeBus implements HubBus {
  readonly sent: Sent[] = [];
  private unacked: Sent[] = [];
  inFlightMax = 0;
  /** What the dispatcher subscribed to this broker's own messages with: `deliver` hands it a state report as the broker would. */
  private onMessageHere: Parameters<HubBus['subscribeHere']>[1] | undefined;

  async subscribe() {}

  subscribeHere(_filters: readonly string[], onMessage: Parameters<HubBus['subscribeHere']>[1]) {
    this.onMessageHere = onMessage;
  }

  /** A client's state report, published through this broker. */
  deliver(topic: string, payload: string): void {
    this.onMessageHere?.(topic, Buffer.from(payload));
  }

  publish(_topic: string, payload: string | Buffer): Promise<void> {
    const desired = JSON.parse(payload.toString()) as DesiredState;
    const signature = verifyDesired(desired, hubKey.publicKey);
    return new Promise((resolve) => {
      const entry = { deviceId: desired.deviceId, revision: desired.revision, signature, ack: () => resolve() };
      this.sent.push(entry);
      this.unacked.push(entry);
      this.inFlightMax = Math.max(this.inFlightMax, this.unacked.length);
    });
  }

  get inFlight() {
    return this.unacked.length;
  }

  /** Lets the broker take what is in flight, then lets the dispatcher's next turn run. */
  async ackAll(): Promise<void> {
    const batch = this.unacked;
    this.unacked = [];
    for (const entry of batch) entry.ack();
    // The dispatcher hears of each in a microtask and schedules its next chunk on the following turn.
    await Promise.resolve();
    await new Promise((resolve) => setImmediate(resolve));
  }
}

function hubStores() {
  const db = openDatabase(':memory:');
  const now = () => new Date('2026-01-01T00:00:00Z');
  const logs = new LogCapture('info');
  const apps = new SqliteAppStore(db, now);
  // A fixed key: what is sealed does not matter to pacing.
  const cipher = new SecretCipher(Buffer.alloc(32, 7));
  const devices = new SqliteDeviceStore(db, cipher, now);
  const secrets = new SqliteSecretStore(db, cipher, now);
  const rollouts = new Rollouts({ apps, devices, rollouts: new SqliteRolloutStore(db), logger: logs.logger, now });
  const dispatcher = (bus: FakeBus, desiredChunk: number) =>
    new Dispatcher({
      bus,
      topics: new Topics('flotilla/v1'),
      apps,
      devices,
      secrets,
      apiRequests: () => undefined,
      rollouts,
      logger: logs.logger,
      signingKey: hubKey.privateKey,
      now,
      rolloutTickMs: 60_000,
      desiredChunk,
    });
  const apply = async (spec: unknown) => {
    const checked = validateAppSpec(spec);
    if (!checked.ok) throw new Error(JSON.stringify(checked.issues));
    await apps.apply(checked.value);
  };
  return { db, logs, cipher, devices, dispatcher, apply };
}

const ids = Array.from({ length: 25 }, (_, i) => `dev-${String(i).padStart(2, '0')}`);
const zoneA = ids.filter((_, i) => i % 2 === 0);

describe('Dispatcher: paced desired state', () => {
  const stops: (() => void)[] = [];
  afterEach(async () => {
    for (const stop of stops.splice(0)) stop();
  });

  /** 25 devices that reported state, each issued revision 1 of the `base` app by a first dispatcher. */
  async function fleetWithDesired() {
    const hub = hubStores();
    await hub.apply(appSpec('base', { site: 'roof' }));
    for (const [i, id] of ids.entries()) {
      await hub.devices.ensure(id);
      await hub.devices.recordState(deviceState(id, { labels: { site: 'roof', zone: i % 2 === 0 ? 'a' : 'b' } }));
    }
    const mqtt = new FakeBus();
    const first = hub.dispatcher(mqtt, 1000);
    stops.push(() => first.stop());
    await first.start();
    // The fleet's plan runs behind start().
    await first.idle();
    expect(mqtt.sent).toHaveLength(25);
    first.stop();
    return hub;
  }

  it('republishes stored documents after a restart a chunk at a time, each after the last one’s acknowledgements', async () => {
    const hub = await fleetWithDesired();
    const mqtt = new FakeBus();
    const restarted = hub.dispatcher(mqtt, 10);
    stops.push(() => restarted.stop());
    await restarted.start();
    await restarted.idle();

    expect(mqtt.inFlight).toBe(10);
    expect(restarted.desiredBacklog).toBe(15);
    // Nothing more goes out until the broker acknowledges.
    await new Promise((resolve) => setImmediate(resolve));
    expect(mqtt.sent).toHaveLength(10);
    await mqtt.ackAll();
    expect(mqtt.sent).toHaveLength(20);
    await mqtt.ackAll();
    expect(mqtt.sent).toHaveLength(25);
    await mqtt.ackAll();

    expect(mqtt.inFlightMax).toBe(10);
    expect(mqtt.sent.map((s) => s.deviceId).sort()).toEqual(ids);
    expect(mqtt.sent.every((s) => s.revision === 1)).toBe(true);
    expect(mqtt.sent.every((s) => s.signature === undefined)).toBe(true);
    expect(restarted.desiredBacklog).toBe(0);
    expect(hub.logs.matching('stored desired state republished')).toEqual([expect.objectContaining({ devices: 25 })]);
  });

  it('sends a sync’s new documents before the republication, and never a replaced older one after them', async () => {
    const hub = await fleetWithDesired();
    const mqtt = new FakeBus();
    const restarted = hub.dispatcher(mqtt, 10);
    stops.push(() => restarted.stop());
    await restarted.start();
    await restarted.idle();
    const firstChunk = mqtt.sent.map((s) => s.deviceId);

    // A change for zone a while the republication is under way: revision 2 for 13 devices.
    await hub.apply(appSpec('extra', { zone: 'a' }));
    await restarted.sync();
    expect(mqtt.sent).toHaveLength(10); // still waiting for the first chunk's acknowledgements
    await mqtt.ackAll();
    // Fresh documents first.
    expect(mqtt.sent.slice(10).map((s) => s.revision)).toEqual(Array(10).fill(2));
    while (mqtt.inFlight > 0) await mqtt.ackAll();

    expect(mqtt.inFlightMax).toBe(10);
    for (const [i, id] of ids.entries()) {
      const revisions = mqtt.sent.filter((s) => s.deviceId === id).map((s) => s.revision);
      const expected = i % 2 === 0 ? 2 : 1;
      expect(revisions.at(-1), id).toBe(expected);
      // Revision 1 only if it was already on its way before revision 2 existed.
      if (expected === 2) expect(revisions, id).toEqual(firstChunk.includes(id) ? [1, 2] : [2]);
      else expect(revisions, id).toEqual([1]);
    }
    expect(
      mqtt.sent
        .filter((s) => s.revision === 2)
        .map((s) => s.deviceId)
        .sort(),
    ).toEqual(zoneA);
  });

  it('paces a fleet-wide sync the same way, and republishes nothing whose content did not change', async () => {
    const hub = await fleetWithDesired();
    const mqtt = new FakeBus();
    const dispatcher = hub.dispatcher(mqtt, 4);
    stops.push(() => dispatcher.stop());
    await dispatcher.start();
    await dispatcher.idle();
    while (mqtt.inFlight > 0) await mqtt.ackAll();
    const before = mqtt.sent.length;

    await dispatcher.sync(); // nothing changed: nothing sent
    expect(mqtt.sent).toHaveLength(before);

    await hub.apply(appSpec('extra', { site: 'roof' }));
    await dispatcher.sync();
    expect(mqtt.sent).toHaveLength(before + 4);
    expect(dispatcher.desiredBacklog).toBe(21);
    while (mqtt.inFlight > 0) await mqtt.ackAll();
    expect(mqtt.sent).toHaveLength(before + 25);
    expect(mqtt.inFlightMax).toBe(4);
  });

  it('hands a fleet-wide sync to the broker a chunk at a time as it is planned, letting the event loop turn between chunks', async () => {
    const hub = await fleetWithDesired();
    const mqtt = new FakeBus();
    const dispatcher = hub.dispatcher(mqtt, 5);
    stops.push(() => dispatcher.stop());
    await dispatcher.start();
    await dispatcher.idle();
    while (mqtt.inFlight > 0) await mqtt.ackAll();
    const before = mqtt.sent.length;

    await hub.apply(appSpec('extra', { site: 'roof' }));
    // What waited when the broker got the pass's first document: planned all at once, the other 20 would have.
    let backlogAtFirst: number | undefined;
    const publish = mqtt.publish.bind(mqtt);
    mqtt.publish = (topic, payload) => {
      backlogAtFirst ??= dispatcher.desiredBacklog;
      return publish(topic, payload);
    };
    let passDone = false;
    const pass = dispatcher.sync().then(() => {
      passDone = true;
    });
    await new Promise((resolve) => setImmediate(resolve));
    // One turn later the first chunk is with the broker and the pass is still under way: it does not hold the loop for the fleet.
    expect(passDone).toBe(false);
    expect(mqtt.sent.slice(before).map((s) => s.revision)).toEqual(Array(5).fill(2));
    expect(backlogAtFirst).toBe(0);

    await pass;
    expect(dispatcher.desiredBacklog).toBe(20);
    while (mqtt.inFlight > 0) await mqtt.ackAll();
    const sent = mqtt.sent.slice(before);
    expect(sent.map((s) => s.deviceId).sort()).toEqual(ids);
    expect(sent.every((s) => s.revision === 2 && s.signature === undefined)).toBe(true);
    expect(mqtt.inFlightMax).toBe(5);
  });

  it('lets the event loop turn while it works through a burst of reports, and handles every one', async () => {
    const hub = hubStores();
    await hub.apply(appSpec('base', { site: 'roof' }));
    const mqtt = new FakeBus();
    const dispatcher = hub.dispatcher(mqtt, 1000);
    stops.push(() => dispatcher.stop());
    await dispatcher.start();
    await dispatcher.idle();
    // As behind a fleet-wide pass: a thousand devices' reports queued at once.
    const burst = Array.from({ length: 1000 }, (_, i) => `dev-${String(i).padStart(4, '0')}`);
    const topics = new Topics('flotilla/v1');
    for (const id of burst) mqtt.deliver(topics.device(id, 'state'), JSON.stringify(deviceState(id, { labels: { site: 'roof' } })));
    let turns = 0;
    let done = false;
    const spin = () => {
      if (done) return;
      turns++;
      setImmediate(spin);
    };
    setImmediate(spin);
    await dispatcher.idle();
    done = true;

    // Handled as one piece, no turn would have come before the last report (each takes a signature and three writes).
    expect(turns).toBeGreaterThan(1);
    const devices = await hub.devices.list();
    expect(devices.filter((d) => d.state !== null && d.desiredRevision === 1).map((d) => d.id)).toEqual(burst);
    while (mqtt.inFlight > 0) await mqtt.ackAll();
    expect(mqtt.sent.map((s) => s.deviceId)).toEqual(burst);
  });

  it('stores each chunk of a fleet-wide pass in one write, and takes an acknowledgement in one store call', async () => {
    const hub = hubStores();
    for (const id of ids) await hub.devices.recordStateReport(deviceState(id, { labels: { site: 'roof' } }));
    const mqtt = new FakeBus();
    const dispatcher = hub.dispatcher(mqtt, 10);
    stops.push(() => dispatcher.stop());
    await dispatcher.start();
    await dispatcher.idle();
    const many = vi.spyOn(hub.devices, 'recordDesiredMany');
    const one = vi.spyOn(hub.devices, 'recordDesired');
    const opened = vi.spyOn(hub.cipher, 'openText');
    await hub.apply(appSpec('base', { site: 'roof' }));
    await dispatcher.sync();
    while (mqtt.inFlight > 0 || dispatcher.desiredBacklog > 0) await mqtt.ackAll();
    // 25 devices, chunks of 10: three writes, each stored before its documents went out.
    expect(many.mock.calls.map(([issued]) => issued.length)).toEqual([10, 10, 5]);
    expect(one).not.toHaveBeenCalled();
    // The pass read each device's document hash, never the document itself.
    expect(opened).toHaveBeenCalledTimes(ids.length);
    const latest = new Map(mqtt.sent.map((s) => [s.deviceId, s.revision]));
    expect((await hub.devices.list()).map((d) => [d.id, d.desiredRevision])).toEqual(ids.map((id) => [id, latest.get(id)]));

    // Every device acknowledges its document: one store call each, no read, nothing to re-plan.
    const report = vi.spyOn(hub.devices, 'recordStateReport');
    const get = vi.spyOn(hub.devices, 'get');
    const sentBefore = mqtt.sent.length;
    const topics = new Topics('flotilla/v1');
    for (const id of ids) {
      mqtt.deliver(
        topics.device(id, 'state'),
        JSON.stringify(deviceState(id, { observedRevision: latest.get(id)!, labels: { site: 'roof' } })),
      );
    }
    await dispatcher.idle();
    expect(report).toHaveBeenCalledTimes(ids.length);
    expect(get).not.toHaveBeenCalled();
    expect(mqtt.sent.length).toBe(sentBefore);
    expect((await hub.devices.list()).every((d) => d.observedRevision === latest.get(d.id))).toBe(true);
  });

  it('sends a single document at once when idle', async () => {
    const hub = hubStores();
    const mqtt = new FakeBus();
    const dispatcher = hub.dispatcher(mqtt, 10);
    stops.push(() => dispatcher.stop());
    await dispatcher.start();
    await dispatcher.idle();
    await hub.apply(appSpec('base', { site: 'roof' }));
    await hub.devices.ensure('dev-1');
    await hub.devices.recordState(deviceState('dev-1'));
    await dispatcher.sync();
    expect(mqtt.sent.map((s) => [s.deviceId, s.revision])).toEqual([['dev-1', 1]]);
  });

  it('re-signs a document stored unsigned (by a hub before signing) when it republishes it, and signs what it stores', async () => {
    const hub = hubStores();
    await hub.devices.ensure('dev-1');
    await hub.devices.recordState(deviceState('dev-1'));
    // Stored with the hash of its content: nothing changed, so revision 3 is republished as it is, only signed.
    await hub.devices.recordDesired({ deviceId: 'dev-1', revision: 3, issuedAt: '2025-12-31T00:00:00.000Z', apps: [] }, desiredHash([]));
    const mqtt = new FakeBus();
    const dispatcher = hub.dispatcher(mqtt, 10);
    stops.push(() => dispatcher.stop());
    await dispatcher.start();
    await dispatcher.idle();
    await mqtt.ackAll();
    expect(mqtt.sent.map((s) => [s.revision, s.signature])).toEqual([[3, undefined]]);

    // A new document is signed before it is stored.
    await hub.apply(appSpec('base', { site: 'roof' }));
    await dispatcher.sync();
    await mqtt.ackAll();
    expect(mqtt.sent.map((s) => [s.revision, s.signature])).toEqual([
      [3, undefined],
      [4, undefined],
    ]);
    const stored = (await hub.devices.get('dev-1'))!.desired!;
    expect(stored.revision).toBe(4);
    expect(verifyDesired(stored, hubKey.publicKey)).toBeUndefined();
  });
});
