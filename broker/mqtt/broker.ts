/**
 * The embedded Aedes broker with its listeners: MQTT over TCP for devices and
 * services, MQTT over WebSocket for dashboards in a browser.
 */
import { createServer as createHttpServer, type Server as HttpServer, type IncomingMessage } from 'node:http';
import { type AddressInfo, createServer as createNetServer, type Server as NetServer } from 'node:net';
import type { Duplex } from 'node:stream';
import { Aedes, type AedesOptions, type Client } from 'aedes';
import mqttPacket from 'mqtt-packet';
import type { Logger } from 'pino';
import { createWebSocketStream, WebSocketServer } from 'ws';
import { connectionAddress } from './client-address.js';
import type { BrokerCluster, ClusterOptions } from './cluster.js';
import type { LinkBytes } from './link-bytes.js';
import { limitPacketSize, type PacketLimit } from './packet-limit.js';
import { FLOTILLA_INTERNAL_PREFIX, MAX_TOPIC_LEVELS, TOPIC_MAX_LENGTH } from './payload-limits.js';
import { retainedIndexedPersistence } from './retained-index.js';
import {
  boundSessionQueues,
  DEFAULT_SUBSCRIBER_LIMITS,
  type SubscriberGuard,
  type SubscriberLimits,
  subscriberGuard,
} from './subscriber-limits.js';

// mqtt-packet (Aedes' writer) otherwise builds, on the first packet it writes,
// a Buffer for each of the 65,536 two-byte numbers a packet may carry: 6.8 MiB
// of heap held for the process's life (heap snapshot of a hub at rest), to
// save one 2-byte write per packet id or length. Set before Aedes writes anything.
mqttPacket.writeToStream.cacheNumbers = false;

export interface BrokerOptions {
  host: string;
  mqttPort: number;
  wsPort: number;
  logger: Logger;
  /**
   * Who may connect, publish and subscribe (broker/mqtt/access.ts), the
   * per-delivery hook traffic counting uses, connection admission, and
   * telemetry ingest (in authorizePublish: broker/telemetry/ingest-before-ack.ts).
   */
  hooks?: Pick<AedesOptions, 'preConnect' | 'authenticate' | 'authorizePublish' | 'authorizeSubscribe' | 'authorizeForward'>;
  /**
   * What one subscriber may make the broker hold: unsent bytes on its
   * connection (4 MiB for a dashboard, 16 MiB for an anonymous client), and
   * messages queued for its persistent session while it is away (1000).
   * See broker/mqtt/subscriber-limits.ts.
   */
  limits?: Partial<SubscriberLimits>;
  /** Retained lookups by exact topic from a map (default true; false is Aedes' stock scan, for bench/connect-storm.ts). */
  retainedIndex?: boolean;
  /** The largest packet a client may send, in bytes (default DEFAULT_MAX_PACKET_BYTES; broker/mqtt/packet-limit.ts). */
  maxPacketBytes?: number;
  /** Counts each device's bytes on its connections (link-bytes.ts). */
  linkBytes?: Pick<LinkBytes, 'watch'>;
  /** One replica of a broker clustered on Redis (cluster.ts); without it, Aedes' memory persistence and emitter. */
  cluster?: Omit<ClusterOptions, 'logger'>;
}

/** 1 MiB: above every per-topic cap (payload-limits.ts), so only a broken or hostile client meets it. */
export const DEFAULT_MAX_PACKET_BYTES = 1024 * 1024;
/** A CONNECT (ids, credentials, a will) is a few hundred bytes; before authentication nobody gets more. */
export const MAX_CONNECT_PACKET_BYTES = 64 * 1024;

/**
 * The largest WebSocket message accepted on an MQTT-over-WebSocket listener.
 * ws buffers a whole message before the stream (and so the packet cap) sees
 * any of it, up to its default of 100 MiB; MQTT.js sends a packet a message,
 * so twice the packet cap leaves room for a client that sends a few at once.
 */
export function webSocketMaxPayload(maxPacketBytes = DEFAULT_MAX_PACKET_BYTES): number {
  return 2 * maxPacketBytes;
}

export interface EmbeddedBroker {
  aedes: Aedes;
  mqttPort: number;
  wsPort: number;
  /** Serves MQTT on a connection accepted elsewhere (the TLS listeners, broker/tls/listeners.ts), with the same guards. */
  handle(conn: Duplex, req?: IncomingMessage): void;
  /** True if this connection was closed because its client id connected to another replica (never on a single broker). */
  tookOverElsewhere(client: Client): boolean;
  close(): Promise<void>;
}

export async function startBroker(options: BrokerOptions): Promise<EmbeddedBroker> {
  const log = options.logger.child({ component: 'broker' });
  const limits = { ...DEFAULT_SUBSCRIBER_LIMITS, ...options.limits };
  const subscribers = subscriberGuard(limits, log);
  const maxPacketBytes = options.maxPacketBytes ?? DEFAULT_MAX_PACKET_BYTES;
  const cluster = options.cluster
    ? await (await import('./cluster.js')).connectCluster({ ...options.cluster, logger: options.logger })
    : undefined;
  const aedes = await createAedes(options, subscribers, cluster);
  aedes.on('clientError', (client, err) => log.debug({ clientId: client?.id, err: err.message }, 'client error'));
  aedes.on('connectionError', (client, err) => log.debug({ clientId: client?.id, err: err.message }, 'connection error'));
  if (cluster) cluster.attach(aedes, limits.maxQueuedMessages);
  else boundSessionQueues(aedes, limits.maxQueuedMessages, log);
  const handle = connectionHandler(aedes, subscribers, maxPacketBytes, log, options.linkBytes, cluster);
  // No Nagle: remote-access frames (a keystroke, a credit grant) are small and waited for; coalescing them costs a delayed-ACK round.
  const tcp = createNetServer({ noDelay: true }, (socket) => handle(socket));
  const { httpForWs, terminateClients } = webSocketListener(handle, maxPacketBytes, log);

  const close = async () => {
    terminateClients();
    // Stop accepting first, then let Aedes disconnect its clients, which is
    // what lets the listeners' close() complete.
    const listenersClosed = Promise.all([closeServer(tcp), closeServer(httpForWs)]);
    if (cluster) await cluster.close(aedes);
    else await new Promise<void>((resolve) => aedes.close(() => resolve()));
    await listenersClosed;
  };
  const tookOverElsewhere = (client: Client) => cluster?.tookOverElsewhere(client) ?? false;

  try {
    const mqttPort = await listen(tcp, options.mqttPort, options.host, 'MQTT (--mqtt-port)');
    const wsPort = await listen(httpForWs, options.wsPort, options.host, 'MQTT over WebSocket (--ws-port)');
    log.info({ host: options.host, mqttPort, wsPort }, 'MQTT broker listening');
    return { aedes, mqttPort, wsPort, handle, tookOverElsewhere, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/**
 * Aedes with Flotilla's settings, behind the given hooks and three of the
 * broker's own: dashboards marked for the subscriber guard, internal topics
 * delivered nowhere, filters longer than any topic refused (mqtt/hooks.ts
 * lists them all in order). A clustered broker puts its own guards in front
 * of authorizePublish and authorizeSubscribe (cluster.ts).
 */
async function createAedes(options: BrokerOptions, subscribers: SubscriberGuard, cluster?: BrokerCluster): Promise<Aedes> {
  const { authenticate, authorizeForward, authorizeSubscribe } = options.hooks ?? {};
  const settings: AedesOptions = {
    // A client that has not drained its connection for this long is
    // disconnected: an anonymous subscriber that stopped reading, or one a
    // replay (retained, or its session's queue) waits for.
    drainTimeout: 30_000,
    // No emitter queue: with one, a subscriber that stops reading holds all
    // the slots while QoS 1 publishers fill the queue, and when it goes, the
    // queued messages nobody wants are released by synchronous recursion
    // until the stack overflows and the process dies. Dashboards' deliveries
    // never wait, and every connection's buffer is bounded (subscriberGuard).
    concurrency: 0,
    // Device ids may be up to 63 characters; 23 is only MQTT 3.1's limit.
    maxClientsIdLength: 128,
    // A deeper topic is refused (PUBLISH: connection closed; SUBSCRIBE: failure).
    maxTopicLevels: MAX_TOPIC_LEVELS,
    // Aedes' memory persistence, with a device's own desired topic found by a
    // map rather than a scan of every retained topic (retained-index.ts).
    ...(cluster || options.retainedIndex === false ? {} : { persistence: retainedIndexedPersistence() }),
    ...options.hooks,
    authenticate(client, username, password, done) {
      if (username !== undefined) subscribers.markDashboard(client);
      if (authenticate) return authenticate(client, username, password, done);
      done(null, true);
    },
    // Messages dropped over their payload cap, or refused by the ACL, go nowhere (payload-limits.ts).
    authorizeForward(client, packet) {
      if (packet.topic.startsWith(FLOTILLA_INTERNAL_PREFIX)) return null;
      return authorizeForward ? authorizeForward(client, packet) : packet;
    },
    // A filter longer than any topic a client may publish to can match nothing: refused (SUBACK
    // 0x80, [MQTT-3.9.3-2]) before it is stored, for this session and a persistent one.
    authorizeSubscribe(client, subscription, done) {
      if (subscription.topic.length > TOPIC_MAX_LENGTH) return done(null, null);
      if (authorizeSubscribe) return authorizeSubscribe(client, subscription, done);
      done(null, subscription);
    },
  };
  if (!cluster) return Aedes.createBroker(settings);
  const { authorizePublish = allowPublish, authorizeSubscribe: subscribe = allowSubscribe } = settings;
  return Aedes.createBroker({
    ...settings,
    ...cluster.aedesOptions,
    ...cluster.hooks({ authorizePublish, authorizeSubscribe: subscribe }),
  });
}

/** Aedes' defaults, for a broker started without hooks (tests, benches). */
const allowPublish: NonNullable<AedesOptions['authorizePublish']> = (_client, packet, done) =>
  done(packet.topic.startsWith('$SYS/') ? new Error('$SYS/ topic is reserved') : null);
const allowSubscribe: NonNullable<AedesOptions['authorizeSubscribe']> = (_client, subscription, done) => done(null, subscription);

/** Serves MQTT on one accepted connection: the byte count and the packet-size cap first, then Aedes, then the subscriber guard. */
function connectionHandler(
  aedes: Aedes,
  subscribers: SubscriberGuard,
  maxPacketBytes: number,
  log: Logger,
  linkBytes?: Pick<LinkBytes, 'watch'>,
  cluster?: Pick<BrokerCluster, 'guard'>,
) {
  // One for every connection: a closure per connection would cost heap per idle device.
  const limit: PacketLimit = {
    maxBytes: maxPacketBytes,
    maxConnectBytes: Math.min(MAX_CONNECT_PACKET_BYTES, maxPacketBytes),
    onRefused: (conn, { bytes, maxBytes, first }) => {
      // Aedes has made the client (it sets conn.client) before it reads anything.
      const client = (conn as Duplex & { client?: Client }).client;
      log.warn(
        { clientId: client?.id || undefined, address: connectionAddress(conn, client?.req), bytes, maxBytes, connect: first },
        'MQTT packet over the size limit (--max-packet-size): connection closed',
      );
    },
  };
  return (conn: Duplex, req?: IncomingMessage) => {
    linkBytes?.watch(conn);
    limitPacketSize(conn, limit);
    const client = aedes.handle(conn, req);
    subscribers.guard(client);
    cluster?.guard(client);
  };
}

/** MQTT over WebSocket for dashboards in a browser. */
function webSocketListener(handle: (conn: Duplex, req?: IncomingMessage) => void, maxPacketBytes: number, log: Logger) {
  const httpForWs = createHttpServer((_req, res) => {
    res.writeHead(426, { 'content-type': 'text/plain' }).end('MQTT over WebSocket: connect with a WebSocket client\n');
  });
  const wss = new WebSocketServer({ server: httpForWs, maxPayload: webSocketMaxPayload(maxPacketBytes) });
  // ws re-emits its HTTP server's errors (EADDRINUSE); `listen` reports them.
  wss.on('error', (err) => log.debug({ err: err.message }, 'websocket server error'));
  wss.on('connection', (socket, req) => {
    const stream = createWebSocketStream(socket);
    stream.on('error', (err) => log.debug({ err: err.message }, 'websocket stream error'));
    handle(stream, req);
  });
  const terminateClients = () => {
    for (const client of wss.clients) client.terminate();
  };
  return { httpForWs, terminateClients };
}

/** Listens, turning "address in use" into an error that names what the port was for. */
export function listen(server: NetServer | HttpServer, port: number, host: string, purpose: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EADDRINUSE') return reject(err);
      reject(
        Object.assign(new Error(`port ${port} on ${host} for ${purpose} is already in use: stop what holds it, or choose another port`), {
          code: err.code,
        }),
      );
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

export function closeServer(server: NetServer | HttpServer): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    server.close(() => resolve());
    if ('closeAllConnections' in server) server.closeAllConnections();
  });
}
