/**
 * What agent/mqtt-internals.ts relies on in MQTT.js, checked with a real
 * MQTT.js client against a real broker that holds back PUBACKs on command:
 * an MQTT.js upgrade that moves `outgoing`, or changes what survives its
 * reconnect(), fails here rather than quietly breaking the link's in-flight
 * bookkeeping.
 */
import type { AuthorizePublishHandler } from 'aedes';
import type { MqttClient } from 'mqtt';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { forgetInFlight, unacknowledgedCount } from '../../agent/mqtt-internals.js';
import { type EmbeddedBroker, startBroker } from '../../broker/mqtt/broker.js';
import { Cleanup } from '../support/cleanup.js';
import { closeClient, connectClient } from '../support/mqtt-client.js';
import { waitFor } from '../support/wait.js';

const logger = pino({ level: 'silent' });

/** Publishes on this topic are authorized (and so acknowledged) only when the test says. */
const HELD = 'held/x';

/** A promise's outcome if it settles within `ms`, else 'pending'. */
function within<T>(promise: Promise<T>, ms: number): Promise<T | 'pending'> {
  return Promise.race([promise, new Promise<'pending'>((resolve) => setTimeout(() => resolve('pending'), ms))]);
}

describe('MQTT.js internals the agent link relies on', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  /** A broker that answers publishes on HELD only when release() is called. */
  async function holdingBroker(): Promise<{ broker: EmbeddedBroker; held: () => number; release: () => void }> {
    const waiting: (() => void)[] = [];
    const authorizePublish: AuthorizePublishHandler = (_client, packet, callback) => {
      if (packet.topic === HELD) waiting.push(() => callback(null));
      else callback(null);
    };
    const broker = await startBroker({ host: '127.0.0.1', mqttPort: 0, wsPort: 0, logger, hooks: { authorizePublish } });
    const release = () => {
      for (const answer of waiting.splice(0)) answer();
    };
    cleanup.add('broker', () => broker.close());
    cleanup.add('held publishes', release);
    return { broker, held: () => waiting.length, release };
  }

  /** Connected as the link connects: a persistent session, no automatic reconnect. */
  async function deviceClient(broker: EmbeddedBroker): Promise<MqttClient> {
    const client = await connectClient(`mqtt://127.0.0.1:${broker.mqttPort}`, { clean: false });
    cleanup.add('client', () => closeClient(client));
    return client;
  }

  /** A QoS 1 publish on HELD; resolves with its callback's error, or undefined on its PUBACK. */
  function publishHeld(client: MqttClient): { answered: () => boolean; done: Promise<Error | undefined> } {
    let answered = false;
    const done = new Promise<Error | undefined>((resolve) =>
      client.publish(HELD, '{"n":1}', { qos: 1 }, (err) => {
        answered = true;
        resolve(err ?? undefined);
      }),
    );
    return { answered: () => answered, done };
  }

  it('counts a QoS 1 publish until its PUBACK arrives', async () => {
    const { broker, held, release } = await holdingBroker();
    const client = await deviceClient(broker);
    expect(unacknowledgedCount(client)).toBe(0);

    const publish = publishHeld(client);
    await waitFor('the broker to hold the publish', () => held() === 1);
    // One acknowledged in between: only what still waits is counted.
    await client.publishAsync('free/x', '{"n":2}', { qos: 1 });
    expect(unacknowledgedCount(client)).toBe(1);

    release();
    expect(await publish.done).toBeUndefined();
    expect(unacknowledgedCount(client)).toBe(0);
  });

  it('keeps a lost connection’s callbacks across reconnect(); forgetInFlight drops them so end() completes', async () => {
    const { broker, held, release } = await holdingBroker();
    const client = await deviceClient(broker);
    const publish = publishHeld(client);
    await waitFor('the broker to hold the publish', () => held() === 1);

    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
    client.stream.destroy();
    await closed;
    const reconnected = new Promise<void>((resolve) => client.once('connect', () => resolve()));
    client.reconnect();
    await reconnected;
    // The PUBACK goes to the connection that is gone; the new one never sees it.
    release();
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(unacknowledgedCount(client)).toBe(1);
    expect(publish.answered()).toBe(false);

    forgetInFlight(client);
    expect(unacknowledgedCount(client)).toBe(0);
    expect(await within(client.endAsync(), 5_000)).toBeUndefined();
    // Forgotten, not failed: the caller has taken the message back itself.
    expect(publish.answered()).toBe(false);
  });

  it('a graceful end() waits while a publish is unacknowledged (what forgetting in-flight callbacks is for)', async () => {
    const { broker, held, release } = await holdingBroker();
    const client = await deviceClient(broker);
    const publish = publishHeld(client);
    await waitFor('the broker to hold the publish', () => held() === 1);

    const ended = client.endAsync();
    expect(await within(ended, 500)).toBe('pending');
    release();
    expect(await publish.done).toBeUndefined();
    expect(await within(ended, 5_000)).toBeUndefined();
  });
});
