/**
 * CONNACK first [MQTT-3.2.0-1], on a clustered broker. Aedes restores a
 * persistent session's subscriptions before it writes the CONNACK (restoreSubs,
 * then storeWill and registerClient, then doConnack: lib/handlers/connect.js),
 * so a message published in between is written to the client before its
 * CONNACK. On one broker that window is a few microtasks; on Redis it is the
 * will's round trips, and a device reconnecting while desired state is
 * published to it met it: MQTT.js waits for a CONNACK that it has already
 * been passed over for, and gives up ("connack timeout"). Here live
 * deliveries to a client wait until its CONNACK is out; the session's queue
 * (emptyQueue, after the CONNACK) may then deliver the same message again,
 * which QoS 1 allows and a whole desired document does not mind.
 */
import type { Aedes, Client } from 'aedes';
import { type ClientDelivery, clientDelivery, connackSent, type Deliver, replaceClientDelivery } from './aedes-internals.js';

interface Held {
  deliver: () => void;
  /** Completes the delivery without writing: the emitter waits for every delivery's callback. */
  drop: () => void;
}

export class ConnackFirst {
  private readonly held = new WeakMap<Client, Held[]>();

  /** Releases a client's held deliveries once its CONNACK is written. */
  attach(aedes: Aedes): void {
    aedes.on('connackSent', (_packet, client) => this.release(client));
  }

  /** Wraps a new connection's delivery functions (call right after aedes.handle). */
  guard(client: Client): void {
    const delivery = clientDelivery(client);
    if (!delivery) return;
    // A connection that ends before its CONNACK: what it held completes unwritten.
    client.conn.once('close', () => this.release(client));
    const hold =
      (deliver: Deliver): Deliver =>
      (packet, cb) => {
        if (connackSent(client) || client.closed) return deliver(packet, cb);
        const waiting = this.held.get(client) ?? [];
        waiting.push({ deliver: () => deliver(packet, cb), drop: () => setImmediate(cb) });
        this.held.set(client, waiting);
      };
    const guarded: ClientDelivery = { deliver0: hold(delivery.deliver0), deliverQoS: hold(delivery.deliverQoS) };
    replaceClientDelivery(client, guarded);
  }

  private release(client: Client): void {
    const waiting = this.held.get(client);
    this.held.delete(client);
    for (const { deliver, drop } of waiting ?? []) {
      if (client.closed) drop();
      else deliver();
    }
  }
}
