/**
 * Wills on a clustered broker, where a client id can move between replicas.
 * Stock Aedes 1.2 with aedes-persistence-redis 11.2 gets two cases wrong, and
 * both would show a connected device offline (its will is a retained
 * `online: false` status):
 *
 * 1. **A dead replica's will for a client that has reconnected elsewhere.**
 *    Wills live under `will:<brokerId>:<clientId>`. On CONNECT Aedes deletes
 *    "the client's will" with `persistence.delWill(client)`, whose key uses
 *    `client.brokerId`, which a Client does not have: nothing is deleted. So a
 *    device that was on replica A (killed) and is back on B leaves A's will
 *    in Redis, and once A's heartbeat is stale every live replica publishes
 *    it. Here the sweep (`sweepWillsAsThisBroker`) skips, and deletes, a
 *    dead replica's will when a live replica holds a will for the same
 *    client id: the client reconnected, and its current will speaks for it.
 * 2. **A takeover across replicas.** When a client id connects to B while A
 *    holds it, A closes its connection on B's `$SYS/<B>/new/clients` and, as
 *    for any close without DISCONNECT, publishes its will: after, or before,
 *    the device's own `online: true` through B, whichever Redis delivers
 *    last. Here A marks the client before Aedes' own listener closes it, and
 *    its will is refused at authorizePublish (Aedes then deletes it without
 *    publishing). A takeover on one replica is unchanged: there the old
 *    connection's will goes out before the new one is registered.
 *
 * And one a Redis outage brings: no replica hears any heartbeat while Redis
 * is away, its own included, so when it is back every replica looks dead
 * until its next heartbeat arrives, and a sweep queued meanwhile would
 * publish the wills of live clients (a device shown offline that never
 * left). Here a replica judges others by their silence only once it has
 * heard its own heartbeat steadily for two intervals
 * (`SteadyHearing`), and never publishes the will of a client connected to
 * itself.
 */

import { Readable } from 'node:stream';
import type { Aedes, AedesOptions, Client, PublishPacket } from 'aedes';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { connectedClient } from './aedes-internals.js';

type AuthorizePublish = NonNullable<AedesOptions['authorizePublish']>;

interface WillPacket {
  clientId: string;
  brokerId: string;
  topic: string;
  payload: Buffer;
  qos: 0 | 1 | 2;
  retain: boolean;
}

export interface WillStore {
  setup(broker: Aedes): Promise<unknown>;
  streamWill(brokers: Record<string, number>): Readable;
  delWill(client: { id: string; brokerId: string }): Promise<unknown>;
}

/** aedes-persistence-redis' key of a will (asyncPersistence.js `willKey`); the persistence connection adds the prefix. */
export function willKey(brokerId: string, clientId: string): string {
  return `will:${brokerId}:${encodeURIComponent(clientId)}`;
}

/** Who may have a dead replica's will published: its client's id and the will's topic. */
export type SweptWillCheck = (clientId: string, topic: string) => boolean;

export interface SweepOptions {
  persistence: WillStore;
  db: Redis;
  /** The broker, once it exists. */
  broker: () => Aedes;
  /** Without it, Aedes' authorizePublish with no client decides, as stock Aedes does. */
  allow?: SweptWillCheck;
  log: Logger;
}

/**
 * Replaces Aedes' publication of dead replicas' wills (`_clearWills` consumes
 * `streamWill`; here it gets an empty stream, the wills having been handled
 * while it read). Besides case 1 above, stock Aedes gets two more things
 * wrong on a hub:
 *
 * - It republishes the stored will packet as it is, with the dead replica's
 *   `brokerId` and the sweeping replica's counter. Every client that has
 *   seen a message from the dead replica keeps that replica's highest
 *   counter and drops anything from it at or below it as a duplicate
 *   (lib/client.js `dedupe`): a dashboard watching the fleet's status never
 *   sees the wills. Here a will goes out as a new message of this replica.
 * - It authorizes the will with no client (the dead replica held it), which
 *   the hub's access control refuses, as it refuses any publish from no one:
 *   the sweep fails and no will is ever published. `allow` lets the hub say
 *   which wills it publishes for a client it cannot authenticate any more
 *   (a device's own status); the others are dropped with a warning.
 */
export function sweepWillsAsThisBroker({ persistence, db, broker, allow, log }: SweepOptions): void {
  const streamWill = persistence.streamWill.bind(persistence);
  // Registered as the broker sets its persistence up, before its first heartbeat.
  let hearing: SteadyHearing | undefined;
  const setup = persistence.setup.bind(persistence);
  persistence.setup = async (aedes) => {
    // Aedes' own options and emitter, which its types do not declare (lib/aedes.js constructor).
    const inside = aedes as Aedes & { opts: { heartbeatInterval: number }; mq: NonNullable<AedesOptions['mq']> };
    const heard = new SteadyHearing(inside.opts.heartbeatInterval);
    inside.mq.on(`$SYS/${inside.id}/heartbeat`, (_packet: unknown, done: () => void) => {
      heard.beat(Date.now());
      done();
    });
    hearing = heard;
    return setup(aedes);
  };
  const allowed = async (will: WillPacket): Promise<boolean> => {
    if (allow) return allow(will.clientId, will.topic);
    const aedes = broker();
    return new Promise((resolve) => aedes.authorizePublish(null, will as unknown as PublishPacket, (err) => resolve(!err)));
  };
  const publish = (will: WillPacket) =>
    new Promise<void>((resolve, reject) => {
      const { topic, payload, qos, retain } = will;
      const fresh = { cmd: 'publish', topic, payload, qos, retain, dup: false } as PublishPacket;
      broker().publish(fresh, (err) => (err ? reject(err) : resolve()));
    });
  persistence.streamWill = (brokers) => {
    const live = Object.keys(brokers);
    const wills = streamWill(brokers) as AsyncIterable<WillPacket>;
    async function* sweep(): AsyncGenerator<never> {
      for await (const will of wills) {
        // Left for a later sweep: this replica cannot tell a dead one from its own deafness, or the client is here.
        if (!hearing?.steady(Date.now()) || connectedClient(broker(), will.clientId)) continue;
        // A live replica's will (Aedes' own check, as it publishes): the store's filter reads the broker id
        // from the key up to the first ':', so a broker id with colons (not the hub's own names) would look like a dead replica's.
        if (brokers[will.brokerId] !== undefined) continue;
        const elsewhere = live.filter((id) => id !== will.brokerId).map((id) => willKey(id, will.clientId));
        const reconnected = elsewhere.length > 0 && (await db.exists(...elsewhere)) > 0;
        if (!reconnected) {
          if (await allowed(will)) await publish(will);
          else
            log.warn(
              { clientId: will.clientId, topic: will.topic },
              "a dead replica's client had a will this hub may not publish for it: dropped",
            );
        }
        await persistence.delWill({ id: will.clientId, brokerId: will.brokerId });
      }
    }
    return Readable.from(sweep());
  };
}

/**
 * Whether this replica has heard its own heartbeat without a gap for 2 intervals: by then it has
 * heard every live replica's too, each of which beats once an interval and hears Redis again
 * within seconds of it (a gap of 2 intervals is deafness, a Redis outage, not a late timer).
 */
export class SteadyHearing {
  private since: number | undefined;
  private last = Number.NEGATIVE_INFINITY;

  constructor(private readonly heartbeatMs: number) {}

  beat(now: number): void {
    if (now - this.last > 2 * this.heartbeatMs) this.since = now;
    this.last = now;
  }

  steady(now: number): boolean {
    return this.since !== undefined && now - this.last <= 2 * this.heartbeatMs && now - this.since >= 2 * this.heartbeatMs;
  }
}

/** Tracks clients whose id another replica took over (case 2 above). */
export class TakeoversElsewhere {
  private readonly moved = new WeakSet<Client>();
  private clients: () => Record<string, Client | undefined> = () => ({});
  private brokerId = '';

  /**
   * The listener for `$SYS/+/new/clients`: registered on the emitter before
   * Aedes registers its own (which closes the client), so the mark is there
   * when the close asks to publish the will.
   */
  readonly onNewClient = (packet: { topic: string; payload: Buffer | string }, done: () => void): void => {
    const announcedBy = packet.topic.split('/')[1];
    const client = this.clients()[packet.payload.toString()];
    if (client && announcedBy !== this.brokerId) this.moved.add(client);
    done();
  };

  /** Called once the broker exists. */
  attach(brokerId: string, clients: () => Record<string, Client | undefined>): void {
    this.brokerId = brokerId;
    this.clients = clients;
  }

  /** True if this connection was closed because its client id connected to another replica. */
  has(client: Client): boolean {
    return this.moved.has(client);
  }

  /** Refuses the will of a client that moved to another replica; everything else goes to `inner`. */
  authorizePublish(inner: AuthorizePublish): AuthorizePublish {
    return (client, packet: PublishPacket, done) => {
      if (client && this.moved.has(client) && packet === (client as Client & { will?: unknown }).will) {
        return done(new Error('client id taken over on another replica: its will is not published'));
      }
      return inner(client, packet, done);
    };
  }
}
