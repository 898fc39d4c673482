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
 *
 * Aedes acknowledges a QoS 1 PUBLISH before it queues it, so a burst of them
 * queues concurrently, and all of it would read the same length and pass:
 * each client's enqueues on this replica take turns (read the length, then
 * push). Replicas queueing for one client at the same moment may still
 * overshoot the bound by a message or two each.
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
  const turns = new Map<string, Promise<void>>();

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

  const enqueue = (subs: { clientId: string }[], packet: unknown) =>
    inTurn(
      turns,
      subs.map((sub) => sub.clientId),
      async () => {
        const subsAdmitted = await admitted(subs);
        if (subsAdmitted.length > 0) await enqueueCombi(subsAdmitted, packet);
      },
    );
  persistence.outgoingEnqueueCombi = enqueue;
  persistence.outgoingEnqueue = (sub, packet) => enqueue([sub], packet);
}

/**
 * Runs `work` once every earlier piece for any of `ids` has finished; its result either way.
 * `turns` holds the last piece queued for each client id.
 */
function inTurn(turns: Map<string, Promise<void>>, ids: string[], work: () => Promise<void>): Promise<void> {
  const earlier = ids.flatMap((id) => turns.get(id) ?? []);
  const run = Promise.allSettled(earlier).then(work);
  const done = run.then(
    () => undefined,
    () => undefined,
  );
  for (const id of ids) turns.set(id, done);
  void done.then(() => {
    for (const id of ids) if (turns.get(id) === done) turns.delete(id);
  });
  return run;
}
