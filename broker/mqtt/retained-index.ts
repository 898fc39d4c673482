/**
 * Aedes' memory persistence with an exact-topic index for retained messages.
 *
 * The stock memory persistence (aedes-persistence 11) answers every
 * SUBSCRIBE by testing each retained topic against the filter, even a filter
 * without wildcards. Every device subscribes to its own desired topic on
 * every connect, and the hub retains three topics per device (desired, state,
 * status), so each connect cost O(fleet) and a reconnect storm O(fleet²):
 * 35–45 % of the broker's CPU in a 2000-device storm (BENCHMARKS.md,
 * "Reconnect storm"). Here a filter without `+` or `#` is answered from a
 * map; filters with wildcards (dashboards, the dispatcher) go the old way.
 *
 * The index holds its own shallow copy of each packet, as the persistence
 * does; the payload buffer is shared, so the extra memory is one small
 * object per retained topic. Everything else is the stock persistence,
 * methods and all (subscriber-limits.ts wraps its outgoing queue).
 *
 * A retained payload is kept in a buffer of its own size (ownBuffer): a
 * retained message lives as long as its topic, often the broker's whole
 * life, and a payload that is a view into a bigger buffer keeps all of it.
 */
import { createRequire } from 'node:module';
import { Readable } from 'node:stream';

/** The two methods wrapped here; the rest of the persistence is passed to Aedes untouched. */
interface RetainedStore {
  storeRetained(packet: RetainedPacket, cb?: (err?: Error | null) => void): unknown;
  createRetainedStreamCombi(patterns: string[]): Readable;
}

interface RetainedPacket {
  topic: string;
  payload: Buffer;
}

// A CommonJS module whose typings declare an ES default export that Node's
// ESM interop does not produce; require() gives the factory as it is.
const memoryPersistence = createRequire(import.meta.url)('aedes-persistence') as () => RetainedStore;

export function retainedIndexedPersistence(): RetainedStore {
  const persistence = memoryPersistence();
  const byTopic = new Map<string, RetainedPacket>();

  const storeRetained = persistence.storeRetained.bind(persistence);
  persistence.storeRetained = (packet, cb) => {
    // An empty retained message deletes the topic's [MQTT-3.3.1-10].
    if (packet.payload.length === 0) {
      byTopic.delete(packet.topic);
      return storeRetained(packet, cb);
    }
    const kept = { ...packet, payload: ownBuffer(packet.payload) };
    byTopic.set(packet.topic, kept);
    return storeRetained(kept, cb);
  };

  const createRetainedStreamCombi = persistence.createRetainedStreamCombi.bind(persistence);
  persistence.createRetainedStreamCombi = (patterns) => {
    if (!patterns.every(isExactTopic)) return createRetainedStreamCombi(patterns);
    return Readable.from(patterns.flatMap((topic) => byTopic.get(topic) ?? []));
  };
  return persistence;
}

/**
 * `payload`, or a copy of it in an ArrayBuffer of its own when it is a view
 * into a bigger one. Buffer.from(string) cuts payloads under 4 KiB from
 * Node's shared 8 KiB pool slabs, and the parser cuts a client's packets
 * from the chunk they were read in: retained, each would keep its whole slab
 * or chunk. The hub's desired documents, made by Buffer.from, held 14.8 MiB
 * of slabs for 10,000 devices (a heap snapshot; 1.5 KiB per device).
 */
export function ownBuffer(payload: Buffer): Buffer {
  // Aedes passes a string given to its publish() through as it is.
  if (!Buffer.isBuffer(payload) || payload.byteLength === payload.buffer.byteLength) return payload;
  const own = Buffer.allocUnsafeSlow(payload.byteLength);
  payload.copy(own);
  return own;
}

function isExactTopic(filter: string): boolean {
  return !filter.includes('+') && !filter.includes('#');
}
