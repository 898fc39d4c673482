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
 *    it. Here the sweep (`streamWill`) skips, and deletes, a dead replica's
 *    will when a live replica holds a will for the same client id: the
 *    client reconnected, and its current will speaks for it.
 * 2. **A takeover across replicas.** When a client id connects to B while A
 *    holds it, A closes its connection on B's `$SYS/<B>/new/clients` and, as
 *    for any close without DISCONNECT, publishes its will: after, or before,
 *    the device's own `online: true` through B, whichever Redis delivers
 *    last. Here A marks the client before Aedes' own listener closes it, and
 *    its will is refused at authorizePublish (Aedes then deletes it without
 *    publishing). A takeover on one replica is unchanged: there the old
 *    connection's will goes out before the new one is registered.
 */

import { Readable } from 'node:stream';
import type { AedesOptions, Client, PublishPacket } from 'aedes';
import type { Redis } from 'ioredis';

type AuthorizePublish = NonNullable<AedesOptions['authorizePublish']>;

interface WillPacket {
  clientId: string;
  brokerId: string;
}

export interface WillStore {
  streamWill(brokers: Record<string, number>): Readable;
  delWill(client: { id: string; brokerId: string }): Promise<unknown>;
}

/** aedes-persistence-redis' key of a will (asyncPersistence.js `willKey`); the persistence connection adds the prefix. */
export function willKey(brokerId: string, clientId: string): string {
  return `will:${brokerId}:${encodeURIComponent(clientId)}`;
}

/** Wraps `persistence.streamWill` (case 1 above). */
export function skipSupersededWills(persistence: WillStore, db: Redis): void {
  const streamWill = persistence.streamWill.bind(persistence);
  persistence.streamWill = (brokers) => {
    const live = Object.keys(brokers);
    const wills = streamWill(brokers) as AsyncIterable<WillPacket>;
    async function* current(): AsyncGenerator<WillPacket> {
      for await (const will of wills) {
        const elsewhere = live.filter((id) => id !== will.brokerId).map((id) => willKey(id, will.clientId));
        if (elsewhere.length > 0 && (await db.exists(...elsewhere)) > 0) {
          await persistence.delWill({ id: will.clientId, brokerId: will.brokerId });
          continue;
        }
        yield will;
      }
    }
    return Readable.from(current());
  };
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
