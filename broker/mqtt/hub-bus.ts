/**
 * The hub's own messages on its own broker, in process: desired documents
 * and API responses from the dispatcher, the retained offline status the
 * presence publishes for a device that vanished, the `forbidden` answers of
 * the access control. No connection, so no credentials, and none of the
 * limits meant for strangers (packet size, admission, payload caps) to exempt
 * the hub from. Deliveries still pass authorizeForward, so a private message
 * reaches only its owner, whoever publishes it.
 *
 * Only Aedes' public API is used here (`publish`, `subscribe`).
 */
import type { Aedes, AedesPublishPacket, PublishPacket } from 'aedes';

export interface HubPublishOptions {
  qos: 0 | 1;
  retain?: boolean;
}

export interface MessageOrigin {
  /**
   * Published through this broker: by a client connected to it, or by the hub
   * itself (its bus, a will). Always true on a single broker; on a clustered
   * one (cluster.ts) every replica receives every replica's messages, and this
   * is how exactly one of them takes a client's report or request: the one it
   * was published through, which needs no lookup that a disconnect or a move
   * to another replica could race.
   */
  publishedHere: boolean;
}

export interface HubBus {
  /** Resolves once the broker has taken the message (stored if retained, queued for offline persistent sessions). */
  publish(topic: string, payload: string | Buffer, options: HubPublishOptions): Promise<void>;
  /** Calls `onMessage` for every message clients publish on these filters (after the broker authorized it). */
  subscribe(filters: readonly string[], onMessage: (topic: string, payload: Buffer, origin: MessageOrigin) => void): Promise<void>;
}

export function hubBus(aedes: Aedes): HubBus {
  return {
    publish(topic, payload, { qos, retain = false }) {
      const packet = {
        cmd: 'publish',
        topic,
        payload: typeof payload === 'string' ? Buffer.from(payload) : payload,
        qos,
        retain,
        dup: false,
      } as PublishPacket;
      return new Promise((resolve, reject) => aedes.publish(packet, (err) => (err ? reject(err) : resolve())));
    },

    async subscribe(filters, onMessage) {
      await Promise.all(
        filters.map(
          (filter) =>
            new Promise<void>((resolve) =>
              aedes.subscribe(
                filter,
                (packet: AedesPublishPacket, done: () => void) => {
                  // The handler never throws (the dispatcher's route catches); `done` frees the broker's delivery either way.
                  try {
                    onMessage(packet.topic, Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload), {
                      publishedHere: packet.brokerId === aedes.id,
                    });
                  } finally {
                    done();
                  }
                },
                () => resolve(),
              ),
            ),
        ),
      );
    },
  };
}
