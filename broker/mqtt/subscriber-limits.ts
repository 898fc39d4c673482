/**
 * Bounds on what the broker holds for one subscriber, so that a subscriber
 * which stops reading (a frozen dashboard tab, a dead cellular link, a socket
 * reset mid-flood) can neither take the hub down, nor hold up delivery to
 * the others, nor make the hub buffer without bound.
 * test/integration/broker-subscriber-flood.test.ts shows the troubles of
 * stock Aedes 1.2 below, and these guards.
 *
 * 1. **A stuck subscriber stalls every subscriber** (moscajs/aedes#1060,
 *    Aedes docs "drainTimeout"). A live message holds one of the emitter's
 *    100 slots (`concurrency`) until every matching subscriber's write has
 *    completed, and a write to a full socket completes on `drain`
 *    (lib/write.js → Client#waitForDrain). So one subscriber that stops
 *    reading takes all the slots: nobody receives anything until
 *    `drainTimeout` disconnects it, and one that reads slowly restarts that
 *    timer at every drain and paces the whole broker for as long as it likes.
 *    Even without slots (`concurrency: 0`), the publisher of each message
 *    it subscribes to is not read again until that write drains.
 *
 * 2. **…while QoS 1 publishers fill the emitter's queue, and its unwinding
 *    crashes the hub.** Aedes acks QoS 1 before delivering, and each new
 *    packet's `readable` event restarts reading (lib/client.js `nextBatch`),
 *    so a device that waits for each PUBACK keeps publishing during the
 *    stall and the emitter queues it all (15k messages, +80 MB in 5 s). When
 *    the stuck subscriber then disconnects, the queued messages match nobody,
 *    and mqemitter releases each one synchronously from the last
 *    (`released` → `_do` → fastparallel with no listeners → `released`…):
 *    `RangeError: Maximum call stack size exceeded`, uncaught, and the hub
 *    process exits.
 *
 *    Guard (with 1): the broker runs with `concurrency: 0`, so the emitter
 *    never queues (broker.ts), and a dashboard's live deliveries never wait:
 *    the packet goes to Aedes' own write path and the delivery completes at
 *    once; the bytes wait in that client's connection, and a client with
 *    more than `maxBufferedBytes` unsent is disconnected (logged with its id).
 *    Dashboards are the clients that logged in with a username. Clients
 *    without one (anonymous devices and services) keep Aedes' backpressure:
 *    one that stops reading holds up the publishers of what it subscribes
 *    to until `drainTimeout` (30 s), and
 *    is cut off past `maxBufferedBytesAnonymous`. Replays to one client
 *    (retained messages on SUBSCRIBE, a persistent session's queue on
 *    reconnect) keep Aedes' flow control for everyone: they hold up only
 *    that client.
 *
 * 3. **A persistent session's queue has no bound** (moscajs/aedes#1087). For
 *    a `clean: false` client with QoS 1 subscriptions, the in-memory
 *    persistence keeps every QoS 1 message until the client acknowledges it:
 *    if the client vanishes, until it returns, which may be never (MQTT 3.1.1
 *    sessions do not expire).
 *
 *    Guard: at most `maxQueuedMessages` per session while its client is
 *    offline; newer messages for it are dropped (logged once per episode).
 *
 * Guards 2 and 3 reach into Aedes internals (the client's `deliver0` and
 * `deliverQoS`, the persistence's outgoing-queue methods) through
 * aedes-internals.ts, whose test fails if an Aedes upgrade moves them;
 * `subscriberGuard` also logs an error if they are gone.
 */
import type { Aedes, Client } from 'aedes';
import type { Logger } from 'pino';
import { clientDelivery, connectedClient, type Deliver, outgoingQueue, replaceClientDelivery } from './aedes-internals.js';
import { remoteAddress } from './client-address.js';

export interface SubscriberLimits {
  /** Unsent bytes a dashboard (a client with a username) may have waiting before it is disconnected. */
  maxBufferedBytes: number;
  /** The same for anonymous clients, whose deliveries wait for their drain. */
  maxBufferedBytesAnonymous: number;
  /** Unacknowledged QoS 1/2 messages kept for a persistent session while its client is away. */
  maxQueuedMessages: number;
}

export const DEFAULT_SUBSCRIBER_LIMITS: SubscriberLimits = {
  maxBufferedBytes: 4 * 1024 * 1024,
  maxBufferedBytesAnonymous: 16 * 1024 * 1024,
  maxQueuedMessages: 1000,
};

export interface SubscriberGuard {
  /** Wraps a new connection's Client (what `aedes.handle` returned), before it can subscribe. */
  guard(client: Client): Client;
  /** Marks a client that logged in with a username (call from the authenticate hook). */
  markDashboard(client: Client): void;
}

export function subscriberGuard(limits: SubscriberLimits, log: Logger): SubscriberGuard {
  const dashboards = new WeakSet<Client>();
  let warnedInternals = false;

  const guard = (client: Client): Client => {
    const delivery = clientDelivery(client);
    if (!delivery) {
      if (!warnedInternals) {
        warnedInternals = true;
        log.error('Aedes client internals changed (no deliver0/deliverQoS): slow subscribers are not bounded and can stall the broker');
      }
      return client;
    }
    let cutOff = false;
    // Aedes looks these up when a subscription is added, so wrapping them
    // here covers every live delivery to this client.
    const live =
      (deliver: Deliver): Deliver =>
      (packet, cb) => {
        // Retained messages replayed on SUBSCRIBE carry no brokerId: this
        // client's own stream, which keeps waiting for its drain.
        if (!packet.brokerId) return deliver(packet, cb);
        if (cutOff || client.closed) return setImmediate(cb);
        const dashboard = dashboards.has(client);
        const max = dashboard ? limits.maxBufferedBytes : limits.maxBufferedBytesAnonymous;
        const buffered = client.conn.writableLength;
        if (buffered > max) {
          cutOff = true;
          log.warn(
            { clientId: client.id, bufferedBytes: buffered, maxBufferedBytes: max, remote: remoteAddress(client) },
            'disconnecting an MQTT client that is not reading what it subscribed to',
          );
          client.close();
          return setImmediate(cb);
        }
        if (!dashboard) return deliver(packet, cb);
        // Aedes writes the packet (and waits for drain on its own); the
        // delivery is complete now, whatever this client's socket does.
        deliver(packet, noop);
        setImmediate(cb);
      };
    replaceClientDelivery(client, { deliver0: live(delivery.deliver0), deliverQoS: live(delivery.deliverQoS) });
    return client;
  };

  return { guard, markDashboard: (client) => dashboards.add(client) };
}

/**
 * Wraps the outgoing-queue methods of `aedes.persistence` (call once, after
 * `Aedes.createBroker`) so that a session whose client is offline holds at
 * most `maxQueuedMessages`. Counts what is queued per client id (every queued
 * message leaves through `outgoingClearMessageId`: acknowledged, or cleared
 * on a clean reconnect).
 */
export function boundSessionQueues(aedes: Aedes, maxQueuedMessages: number, log: Logger): void {
  const persistence = outgoingQueue(aedes);
  const enqueue = persistence.outgoingEnqueue.bind(persistence);
  const enqueueCombi = persistence.outgoingEnqueueCombi.bind(persistence);
  const clear = persistence.outgoingClearMessageId.bind(persistence);
  const queued = new Map<string, number>();
  const dropping = new Map<string, number>();

  const admit = (clientId: string): boolean => {
    const count = queued.get(clientId) ?? 0;
    if (count >= maxQueuedMessages && connectedClient(aedes, clientId) === undefined) {
      const dropped = (dropping.get(clientId) ?? 0) + 1;
      dropping.set(clientId, dropped);
      if (dropped === 1) {
        log.warn(
          { clientId, maxQueuedMessages },
          'persistent MQTT session is full while its client is away: dropping newer messages for it',
        );
      }
      return false;
    }
    queued.set(clientId, count + 1);
    return true;
  };

  persistence.outgoingEnqueue = async (sub, packet) => {
    if (admit(sub.clientId)) await enqueue(sub, packet);
  };
  persistence.outgoingEnqueueCombi = async (subs, packet) => {
    const admitted = subs.filter((sub) => admit(sub.clientId));
    if (admitted.length > 0) await enqueueCombi(admitted, packet);
  };
  persistence.outgoingClearMessageId = async (client, packet) => {
    const removed = await clear(client, packet);
    if (removed) {
      const count = (queued.get(client.id) ?? 1) - 1;
      if (count > 0) queued.set(client.id, count);
      else queued.delete(client.id);
      const dropped = dropping.get(client.id);
      if (dropped !== undefined && count < maxQueuedMessages) {
        dropping.delete(client.id);
        log.info({ clientId: client.id, dropped }, 'persistent MQTT session drains again');
      }
    }
    return removed;
  };
}

function noop(): void {}
