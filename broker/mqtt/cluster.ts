/**
 * One replica of a clustered broker: Aedes on Redis, through Aedes' own
 * clustering (mqemitter-redis carries every message between replicas,
 * aedes-persistence-redis keeps sessions, subscriptions, retained messages
 * and wills). Loaded only when the hub is given `--redis` (broker.ts imports
 * this module lazily), so a single hub never loads a Redis client.
 *
 * Known traps of these libraries, and what this module does about each:
 *
 * - **Shared persistence without the shared emitter** silently stops
 *   delivery between replicas (moscajs/aedes#531, moscajs/aedes-cli#155):
 *   live messages never leave the replica, and the persistence learns other
 *   replicas' subscriptions through the emitter (`$SYS/sub/add`), so it
 *   does not queue for them either. Both are built here from the one URL;
 *   there is no way to configure one without the other.
 * - **Redis databases do not separate pub/sub**: channels are global to the
 *   server, so two fleets on `redis://host/1` and `redis://host/2` would
 *   receive each other's messages. Channels carry the database number in
 *   their prefix, so a database is a fleet's own, keys and messages alike.
 * - **A retained QoS 2 message to a persistent session** (moscajs/aedes#1003,
 *   moscajs/aedes-persistence-redis#90): the retained copy is written
 *   without an outgoing-queue entry, so the client's PUBREC finds "unknown
 *   key" and the connection is closed, at every SUBSCRIBE. Subscriptions
 *   are granted at most QoS 1 here (MQTT 3.1.1 section 3.8.4: the server
 *   may grant a lower QoS than asked), and a session's queue holds messages
 *   at most at QoS 1, so no delivery takes the QoS 2 path; Flotilla's own
 *   topics are QoS 1 anyway. Clients may still publish at QoS 2.
 * - **All retained messages in one hash** (`retained`). A device's own
 *   desired topic is an HGET (no index needed, unlike the memory
 *   persistence: retained-index.ts is not used here); a wildcard SUBSCRIBE
 *   (a dashboard's `devices/+/status`) is an HSCAN of the whole hash, every
 *   retained message of the fleet read over the network for one SUBSCRIBE.
 *   Measured in the cluster tests' notes; nothing here changes it.
 * - **A crashed replica's wills** are published by the others only once its
 *   heartbeat is 3 intervals stale, checked every 4: minutes with Aedes'
 *   one-minute default. `heartbeatMs` (5 s) makes it at most 35 s. Wills of
 *   clients that moved to another replica are handled in cluster-wills.ts.
 * - **A closing replica's wills**: Aedes closes its emitter as soon as its
 *   clients are closed, while their wills are still on the way to Redis,
 *   and then deletes them: a replica stopped gracefully published none, and
 *   left none for the sweep. The emitter's close waits for them here
 *   (cluster-close.ts).
 */
import { createRequire } from 'node:module';
import type { Aedes, AedesOptions, Client } from 'aedes';
import type { Logger } from 'pino';
import { destroyConnections, type OutgoingQueue, outgoingQueue } from './aedes-internals.js';
import { PublishesInFlight } from './cluster-close.js';
import { ConnackFirst } from './cluster-connack.js';
import { openRedisConnections, probeRedis, type RedisConnections, redactedRedisUrl, redisDatabase } from './cluster-redis.js';
import { boundClusterSessionQueues } from './cluster-session-bound.js';
import { type SweptWillCheck, sweepWillsAsThisBroker, TakeoversElsewhere, type WillStore } from './cluster-wills.js';

export interface ClusterOptions {
  /** `redis://[user:password@]host:port[/db]` (or `rediss://`). */
  url: string;
  logger: Logger;
  /** Prefix of every key and channel (default `flotilla:`): tests share one Redis this way. */
  prefix?: string;
  /** How often a replica says it is alive; a dead one's wills go out within 7 of these (default 5 s). */
  heartbeatMs?: number;
  /** Which wills of a dead replica's clients this replica publishes (cluster-wills.ts); default: authorizePublish with no client. */
  sweptWills?: SweptWillCheck;
  /** The broker's id (default Aedes' random UUID): the replica's one name, which its heartbeat and messages carry. */
  id?: string;
}

export const DEFAULT_CLUSTER_HEARTBEAT_MS = 5_000;
/** How long a closing replica waits for Redis to take its clients' wills and unsubscriptions. */
const CLOSE_GRACE_MS = 5_000;
const DEFAULT_PREFIX = 'flotilla:';

type Hooks = Pick<AedesOptions, 'authorizePublish' | 'authorizeSubscribe'>;

export interface BrokerCluster {
  /** The shared emitter, the shared persistence and the heartbeat, for Aedes.createBroker. */
  readonly aedesOptions: Pick<AedesOptions, 'id' | 'mq' | 'persistence' | 'heartbeatInterval'>;
  /** The broker's hooks with the cluster's guards in front (QoS cap, moved clients' wills). */
  hooks(hooks: Required<Hooks>): Required<Hooks>;
  /** Call once the broker exists: errors, the session queue bound, the will sweep. */
  attach(aedes: Aedes, maxQueuedMessages: number): void;
  /** Wraps a new connection's client (after the subscriber guard): no delivery before its CONNACK (cluster-connack.ts). */
  guard(client: Client): void;
  /** True if this connection was closed because its client id connected to another replica. */
  tookOverElsewhere(client: Client): boolean;
  /** Closes the broker (its clients' wills go out through Redis first), then the connections. */
  close(aedes: Aedes): Promise<void>;
}

// CommonJS modules; require() gives their factories as they are.
const require = createRequire(import.meta.url);
const redisPersistence = require('aedes-persistence-redis') as (options: { conn: unknown }) => NonNullable<AedesOptions['persistence']>;
const { MQEmitterRedisPrefix } = require('mqemitter-redis') as {
  MQEmitterRedisPrefix: new (
    prefix: string,
    options: { subConn: unknown; pubConn: unknown; concurrency: number; matchEmptyLevels: boolean },
  ) => NonNullable<AedesOptions['mq']> & { state: NodeJS.EventEmitter };
};

/** Probes Redis (one clear error if it cannot be used), then builds the emitter and persistence on it. */
export async function connectCluster(options: ClusterOptions): Promise<BrokerCluster> {
  const log = options.logger.child({ component: 'cluster' });
  await probeRedis(options.url);
  const prefix = options.prefix ?? DEFAULT_PREFIX;
  const redis = openRedisConnections({ url: options.url, keyPrefix: prefix, logger: options.logger });
  const mq = new MQEmitterRedisPrefix(`${prefix}${redisDatabase(options.url)}:`, {
    subConn: redis.sub,
    pubConn: redis.pub,
    // As broker.ts's own emitter: no queue (subscriber-limits.ts, guard 2), and `a/#` matches `a` [MQTT-4.7.1-3].
    concurrency: 0,
    matchEmptyLevels: true,
  });
  // mqemitter-redis re-emits every connection error here, and an unheard 'error' ends the process:
  // a Redis outage would crash the hub. The connections' own listeners log the outage once.
  mq.state.on('error', () => {});
  const emit = mq.emit.bind(mq);
  mq.emit = (packet: Parameters<typeof emit>[0], done?: Parameters<typeof emit>[1]) => redis.whenListening(() => emit(packet, done));
  // Aedes closes the emitter once its clients are closed, before their wills are through (cluster-close.ts).
  const inFlight = new PublishesInFlight();
  const closeEmitter = mq.close.bind(mq);
  mq.close = (done?: () => void) => {
    inFlight.settled().then(() => closeEmitter(done));
  };
  const takeovers = new TakeoversElsewhere();
  // Before Aedes registers its own listener on this pattern (cluster-wills.ts, case 2).
  mq.on('$SYS/+/new/clients', takeovers.onNewClient);
  const persistence = redisPersistence({ conn: redis.persistence });
  replayRetainedWithoutCrashing(persistence as unknown as RetainedStreams, log);
  let broker: Aedes | undefined;
  sweepWillsAsThisBroker({
    persistence: persistence as unknown as WillStore,
    db: redis.persistence,
    broker: () => broker as Aedes,
    ...(options.sweptWills ? { allow: options.sweptWills } : {}),
    log,
  });
  const heartbeatMs = options.heartbeatMs ?? DEFAULT_CLUSTER_HEARTBEAT_MS;
  log.info({ redis: redactedRedisUrl(options.url), prefix, heartbeatMs }, 'MQTT broker clustered on Redis');
  const aedesOptions = { mq, persistence, heartbeatInterval: heartbeatMs, ...(options.id !== undefined ? { id: options.id } : {}) };
  const cluster = clusterOf(redis, aedesOptions, takeovers, new ConnackFirst(), log);
  return {
    ...cluster,
    attach(aedes, maxQueuedMessages) {
      broker = aedes;
      inFlight.track(aedes);
      cluster.attach(aedes, maxQueuedMessages);
    },
  };
}

function clusterOf(
  redis: RedisConnections,
  aedesOptions: BrokerCluster['aedesOptions'],
  takeovers: TakeoversElsewhere,
  connackFirst: ConnackFirst,
  log: Logger,
): BrokerCluster {
  return {
    aedesOptions,
    hooks: ({ authorizePublish, authorizeSubscribe }) => ({
      authorizePublish: takeovers.authorizePublish(authorizePublish),
      authorizeSubscribe: (client, subscription, done) =>
        authorizeSubscribe(client, subscription, (err, granted) => {
          // In place: Aedes stores the SUBSCRIBE's own objects in the session, which a reconnect restores.
          // (Its SUBACK still says what was asked: Aedes takes the granted QoS from the request.)
          if (granted && granted.qos > 1) granted.qos = 1;
          done(err, granted);
        }),
    }),
    attach(aedes, maxQueuedMessages) {
      takeovers.attach(aedes.id, () => (aedes as unknown as { clients: Record<string, Client | undefined> }).clients);
      queueAtMostQoS1(outgoingQueue(aedes));
      boundClusterSessionQueues(outgoingQueue(aedes), redis.persistence, maxQueuedMessages, log);
      connackFirst.attach(aedes);
      // Unheard, an 'error' event ends the process.
      let reported = false;
      // Aedes' typings list no 'error' event, though aedes.js emits one (persistence failures, the will sweep).
      (aedes as unknown as NodeJS.EventEmitter).on('error', (err: Error) => {
        if (redis.up || !reported) log.warn({ err: err.message }, 'clustered broker: a Redis operation failed');
        reported = !redis.up;
      });
    },
    guard: (client) => connackFirst.guard(client),
    tookOverElsewhere: (client) => takeovers.has(client),
    async close(aedes) {
      redis.closing();
      // Commands wait for Redis for ever (the offline queue), and closing clients unsubscribes
      // through it: without Redis, fail them now; with it, bound the wait all the same.
      if (!redis.up) redis.disconnect();
      const closed = new Promise<void>((resolve) => aedes.close(() => resolve())).then(() => redis.drained());
      let timer: NodeJS.Timeout | undefined;
      const gaveUp = await Promise.race([
        closed.then(() => false),
        new Promise<boolean>((resolve) => {
          timer = setTimeout(() => resolve(true), CLOSE_GRACE_MS);
        }),
      ]);
      clearTimeout(timer);
      redis.disconnect();
      if (gaveUp) destroyConnections(aedes);
      if (gaveUp) log.warn({ graceMs: CLOSE_GRACE_MS }, 'closing the clustered broker: Redis did not answer in time; closed without it');
    },
  };
}

/**
 * A persistent session's queue keeps a message at the QoS it was published
 * with, and replays it so (aedes-persistence-redis does not lower it to the
 * subscription's): with every subscription at most QoS 1, so is the queue.
 */
function queueAtMostQoS1(persistence: OutgoingQueue): void {
  const enqueueCombi = persistence.outgoingEnqueueCombi.bind(persistence);
  const enqueue = persistence.outgoingEnqueue.bind(persistence);
  const atMost1 = (packet: unknown) => {
    const { qos } = packet as { qos?: number };
    return qos !== undefined && qos > 1 ? { ...(packet as object), qos: 1 } : packet;
  };
  persistence.outgoingEnqueueCombi = (subs, packet) => enqueueCombi(subs, atMost1(packet));
  persistence.outgoingEnqueue = (sub, packet) => enqueue(sub, atMost1(packet));
}

interface RetainedStreams {
  createRetainedStreamCombi(patterns: string[]): NodeJS.ReadableStream;
}

/**
 * Aedes pipes the retained messages for a SUBSCRIBE from this stream with
 * `pipe`, which leaves the stream's errors unheard: Redis lost in the middle
 * of one (a wildcard's HSCAN reads the whole retained hash, a second or more
 * for a large fleet) would end the process. Here the replay just stops.
 */
function replayRetainedWithoutCrashing(persistence: RetainedStreams, log: Logger): void {
  const createRetainedStreamCombi = persistence.createRetainedStreamCombi.bind(persistence);
  persistence.createRetainedStreamCombi = (patterns) => {
    const stream = createRetainedStreamCombi(patterns);
    stream.on('error', (err: Error) =>
      log.warn({ filters: patterns, err: err.message }, 'retained messages for a SUBSCRIBE could not be read from Redis: not all replayed'),
    );
    return stream;
  };
}
