/**
 * What broker/mqtt/aedes-internals.ts relies on in Aedes, checked on a real
 * broker with real MQTT.js clients: an Aedes upgrade that moves any of it
 * fails here rather than quietly turning a guard off.
 */
import type { MqttClient } from 'mqtt';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { clientDelivery, closeClients, connectedClient, outgoingQueue, replaceClientDelivery } from '../../broker/mqtt/aedes-internals.js';
import { type EmbeddedBroker, startBroker } from '../../broker/mqtt/broker.js';
import { hubBus } from '../../broker/mqtt/hub-bus.js';
import { Cleanup } from '../support/cleanup.js';
import { closeClient, connectClient, Inbox } from '../support/mqtt-client.js';
import { waitFor } from '../support/wait.js';

const logger = pino({ level: 'silent' });

describe('Aedes internals the hub relies on', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  async function broker(): Promise<EmbeddedBroker> {
    const b = await startBroker({ host: '127.0.0.1', mqttPort: 0, wsPort: 0, logger });
    cleanup.add('broker', () => b.close());
    return b;
  }

  async function client(b: EmbeddedBroker, clientId: string): Promise<MqttClient> {
    const c = await connectClient(`mqtt://127.0.0.1:${b.mqttPort}`, { clientId });
    cleanup.add(clientId, () => closeClient(c));
    return c;
  }

  it('finds connected clients by id and closes the ones that match', async () => {
    const b = await broker();
    const [one, two] = [await client(b, 'dev-1'), await client(b, 'dev-2')];
    expect(connectedClient(b.aedes, 'dev-1')?.id).toBe('dev-1');
    expect(connectedClient(b.aedes, 'nobody')).toBeUndefined();
    const closed = new Promise<void>((resolve) => one.once('close', () => resolve()));
    expect(closeClients(b.aedes, (id) => id === 'dev-1')).toBe(1);
    await closed;
    expect(two.connected).toBe(true);
  });

  it('delivers through the delivery functions a client has when it subscribes', async () => {
    const b = await broker();
    const subscriber = await client(b, 'watcher');
    const server = connectedClient(b.aedes, 'watcher')!;
    const delivery = clientDelivery(server);
    expect(delivery).toBeDefined();
    const seen: string[] = [];
    replaceClientDelivery(server, {
      deliver0: (packet, cb) => {
        seen.push('qos0');
        delivery!.deliver0(packet, cb);
      },
      deliverQoS: (packet, cb) => {
        seen.push('qos1');
        delivery!.deliverQoS(packet, cb);
      },
    });
    const inbox = new Inbox(subscriber);
    await subscriber.subscribeAsync({ 'q0/#': { qos: 0 }, 'q1/#': { qos: 1 } });
    const bus = hubBus(b.aedes);
    await bus.publish('q0/x', '{"n":0}', { qos: 0 });
    await bus.publish('q1/x', '{"n":1}', { qos: 1 });
    await inbox.waitFor('q1/x');
    expect(seen).toEqual(['qos0', 'qos1']);
  });

  it('keeps a persistent session’s queue in the persistence’s outgoing methods while its client is away', async () => {
    const b = await broker();
    const queue = outgoingQueue(b.aedes);
    let queued = 0;
    const enqueueCombi = queue.outgoingEnqueueCombi.bind(queue);
    queue.outgoingEnqueueCombi = async (subs, packet) => {
      queued += subs.length;
      await enqueueCombi(subs, packet);
    };
    const device = await connectClient(`mqtt://127.0.0.1:${b.mqttPort}`, { clientId: 'away', clean: false });
    await device.subscribeAsync('away/desired', { qos: 1 });
    await closeClient(device);
    await waitFor('the session offline', () => connectedClient(b.aedes, 'away') === undefined);
    await hubBus(b.aedes).publish('away/desired', '{"revision":1}', { qos: 1 });
    expect(queued).toBe(1);
    // …and delivered when it is back.
    const back = await connectClient(`mqtt://127.0.0.1:${b.mqttPort}`, { clientId: 'away', clean: false });
    cleanup.add('away', () => closeClient(back));
    const inbox = new Inbox(back);
    expect(await inbox.waitFor<{ revision: number }>('away/desired')).toEqual({ revision: 1 });
  });
});
