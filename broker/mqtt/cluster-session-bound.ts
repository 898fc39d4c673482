/**
 * The bound on a persistent session's queue (subscriber-limits.ts, guard 3)
 * for a clustered broker. The single broker counts what it queued per client
 * id in memory; across replicas that count is wrong (a message queued by B is
 * acknowledged to A, so B's count only grows, and B would refuse a device
 * connected to A for good after `maxQueuedMessages`). Here the count is the
 * queue itself: the length of the client's outgoing list in Redis, read in
 * one pipelined round before each enqueue. A client whose queue is full is
 * skipped, whichever replica it is connected to (one that is connected and
 * acknowledging keeps its queue short).
 */
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { OutgoingQueue } from './aedes-internals.js';

/** aedes-persistence-redis' list of a client's queued messages (asyncPersistence.js `outgoingKey`). */
export function outgoingKey(clientId: string): string {
  return `outgoing:${encodeURIComponent(clientId)}`;
}

export function boundClusterSessionQueues(persistence: OutgoingQueue, db: Redis, maxQueuedMessages: number, log: Logger): void {
  const enqueueCombi = persistence.outgoingEnqueueCombi.bind(persistence);
  const dropping = new Map<string, number>();

  const admitted = async (subs: { clientId: string }[]) => {
    const lengths = await Promise.all(subs.map((sub) => db.llen(outgoingKey(sub.clientId))));
    return subs.filter((sub, i) => {
      const full = (lengths[i] ?? 0) >= maxQueuedMessages;
      const dropped = dropping.get(sub.clientId);
      if (full) {
        dropping.set(sub.clientId, (dropped ?? 0) + 1);
        if (dropped === undefined) {
          log.warn(
            { clientId: sub.clientId, maxQueuedMessages },
            'persistent MQTT session is full while its client is away: dropping newer messages for it',
          );
        }
      } else if (dropped !== undefined) {
        dropping.delete(sub.clientId);
        log.info({ clientId: sub.clientId, dropped }, 'persistent MQTT session drains again');
      }
      return !full;
    });
  };

  persistence.outgoingEnqueueCombi = async (subs, packet) => {
    const subsAdmitted = await admitted(subs);
    if (subsAdmitted.length > 0) await enqueueCombi(subsAdmitted, packet);
  };
  persistence.outgoingEnqueue = async (sub, packet) => {
    const [one] = await admitted([sub]);
    if (one) await enqueueCombi([one], packet);
  };
}
