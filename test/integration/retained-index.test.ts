/**
 * The broker's retained-message index answers exact-topic subscriptions
 * from a map and wildcard ones the stock way: what MQTT.js subscribers see
 * must be what they would see from Aedes' own memory persistence —
 * retained on subscribe, the newest value only, and nothing after a delete.
 */
import { createServer } from 'node:net';
import { Aedes } from 'aedes';
import { afterEach, describe, expect, it } from 'vitest';
import { retainedIndexedPersistence } from '../../broker/mqtt/retained-index.js';
import { Cleanup } from '../support/cleanup.js';
import { closeClient, connectClient, Inbox } from '../support/mqtt-client.js';
import { waitFor } from '../support/wait.js';

describe('retained index', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  async function broker(): Promise<string> {
    const aedes = await Aedes.createBroker({ persistence: retainedIndexedPersistence() });
    const server = createServer(aedes.handle);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanup.add('broker', () => new Promise<void>((resolve) => aedes.close(() => server.close(() => resolve()))));
    return `mqtt://127.0.0.1:${(server.address() as { port: number }).port}`;
  }

  async function retainedSeen(url: string, filters: string[], expected: number): Promise<Record<string, string>> {
    const client = await connectClient(url);
    cleanup.add('subscriber', () => closeClient(client));
    const inbox = new Inbox(client);
    await client.subscribeAsync(filters, { qos: 1 });
    if (expected > 0) await waitFor(`${expected} retained`, () => inbox.messages.length >= expected);
    // Anything else retained would arrive right behind; give it the chance.
    await new Promise((resolve) => setTimeout(resolve, 200));
    return Object.fromEntries(inbox.messages.map((m) => [m.topic, m.payload.toString()]));
  }

  it('answers exact topics from the index and wildcards as before, with updates and deletes', async () => {
    const url = await broker();
    const publisher = await connectClient(url);
    cleanup.add('publisher', () => closeClient(publisher));
    await publisher.publishAsync('dev/1/desired', 'one', { qos: 1, retain: true });
    await publisher.publishAsync('dev/2/desired', 'two', { qos: 1, retain: true });
    await publisher.publishAsync('dev/3/desired', 'three', { qos: 1, retain: true });
    await publisher.publishAsync('dev/1/desired', 'one, newer', { qos: 1, retain: true });
    await publisher.publishAsync('dev/3/desired', '', { qos: 1, retain: true });

    expect(await retainedSeen(url, ['dev/1/desired'], 1)).toEqual({ 'dev/1/desired': 'one, newer' });
    expect(await retainedSeen(url, ['dev/1/desired', 'dev/2/desired'], 2)).toEqual({
      'dev/1/desired': 'one, newer',
      'dev/2/desired': 'two',
    });
    expect(await retainedSeen(url, ['dev/3/desired'], 0)).toEqual({});
    expect(await retainedSeen(url, ['dev/+/desired'], 2)).toEqual({ 'dev/1/desired': 'one, newer', 'dev/2/desired': 'two' });
  });
});
