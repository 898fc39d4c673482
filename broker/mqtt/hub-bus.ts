/**
 * The hub's own messages on its own broker, in process: desired documents
 * and API responses from the dispatcher, the retained offline status the
 * presence publishes for a device that vanished, the `forbidden` answers of
 * the access control. No connection, so no credentials, and none of the
 * limits meant for strangers (packet size, admission, payload caps) to exempt
 * the hub from. Deliveries still pass authorizeForward, so a private message
 * reaches only its owner, whoever publishes it.
 *
 * Only Aedes' public API is used here (`publish`, `subscribe`, the 'publish' event).
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
  /** The id of the broker it was published through (on a clustered one, that replica's name; broker/hub/stores.ts). */
  publishedBy?: string;
}

export interface HubBus {
  /** Resolves once the broker has taken the message (stored if retained, queued for offline persistent sessions). */
  publish(topic: string, payload: string | Buffer, options: HubPublishOptions): Promise<void>;
  /** Calls `onMessage` for every message clients publish on these filters (after the broker authorized it). */
  subscribe(filters: readonly string[], onMessage: (topic: string, payload: Buffer, origin: MessageOrigin) => void): Promise<void>;
  /**
   * Calls `onMessage` for every message published through this broker on these filters, and for no
   * other: what only the replica a message came through handles (a device's state report, an API
   * request). On a single broker that is every message, as `subscribe`; on a clustered one it takes
   * them from the broker's own publish path, so no Redis subscription is made for them and other
   * replicas' messages on these topics never reach this one to be decoded and dropped (with 10,000
   * devices reporting at once, that was two thirds of each replica's pub/sub work). `onMessage` must
   * not throw: it runs inside the broker's publish.
   */
  subscribeHere(filters: readonly string[], onMessage: (topic: string, payload: Buffer) => void): void;
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
                      publishedBy: packet.brokerId,
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

    subscribeHere(filters, onMessage) {
      const matchers = filters.map(topicMatcher);
      // 'publish' fires on the broker a message was published through, once it has been stored and relayed.
      aedes.on('publish', (packet: AedesPublishPacket) => {
        if (!matchers.some((matches) => matches(packet.topic))) return;
        onMessage(packet.topic, Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload));
      });
    },
  };
}

/**
 * Whether a topic matches an MQTT filter: `+` is one level, a trailing `#`
 * any number of levels, none included (`a/#` matches `a`, [MQTT-4.7.1-2]),
 * and a wildcard never matches a first level starting with `$` [MQTT-4.7.2-1].
 */
export function topicMatcher(filter: string): (topic: string) => boolean {
  const levels = filter.split('/');
  return (topic) => {
    const words = topic.split('/');
    if (topic.startsWith('$') && (levels[0] === '+' || levels[0] === '#')) return false;
    for (let i = 0; i < levels.length; i++) {
      const level = levels[i];
      if (level === '#') return true;
      if (i >= words.length) return false;
      if (level !== '+' && level !== words[i]) return false;
    }
    return words.length === levels.length;
  };
}
