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

  it('keeps each retained payload in a buffer of its own size, not the pool slab or read chunk it was cut from', async () => {
    const persistence = retainedIndexedPersistence();
    const aedes = await Aedes.createBroker({ persistence: persistence as never });
    cleanup.add('broker', () => new Promise<void>((resolve) => aedes.close(() => resolve())));
    // As the hub publishes desired documents: Buffer.from of a JSON text under 4 KiB, a view into an 8 KiB pool slab.
    const documents = Array.from({ length: 40 }, (_, i) => `{"revision":${i},"apps":[],"note":"${'x'.repeat(300)}"}`);
    for (const [i, text] of documents.entries()) {
      const payload = Buffer.from(text);
      expect(payload.buffer.byteLength).toBeGreaterThan(payload.byteLength);
      await new Promise<void>((resolve, reject) =>
        aedes.publish({ cmd: 'publish', topic: `dev/${i}/desired`, payload, qos: 1, retain: true, dup: false }, (err) =>
          err ? reject(err) : resolve(),
        ),
      );
    }
    // Read back both ways the broker answers a SUBSCRIBE: exact topics (the index) and a wildcard (the persistence).
    for (const filters of [documents.map((_, i) => `dev/${i}/desired`), ['dev/+/desired']]) {
      const kept: { topic: string; payload: Buffer }[] = await persistence.createRetainedStreamCombi(filters).toArray();
      expect(kept).toHaveLength(documents.length);
      for (const { topic, payload } of kept) {
        expect(payload.toString()).toBe(documents[Number(topic.split('/')[1])]);
        expect(payload.buffer.byteLength).toBe(payload.byteLength);
      }
    }
  });
});
