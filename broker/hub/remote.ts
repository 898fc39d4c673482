/**
 * The hub's remote access (broker/remote/): the session registry and audit
 * record, which the MQTT side's ACL consults (`acl`, handed to startHubMqtt),
 * and, once the broker runs, the relay: one in-process subscription to every
 * session's `up` topic and one to every device's `replies`, the WebSocket
 * endpoint the HTTP and HTTPS servers hand their upgrades to, and device
 * disconnects ending that device's sessions (`link_lost`). A replica also ends
 * the sessions of replicas that are gone, in the audit trail and on their
 * devices (broker/remote/replica-orphans.ts).
 */
import type { Logger } from 'pino';
import type { Closer } from '../../shared/closer.js';
import type { Topics } from '../../shared/index.js';
import type { Authenticator } from '../auth/authenticator.js';
import { httpAuth } from '../auth/http-auth.js';
import type { LoginDelay } from '../auth/login-delay.js';
import type { SessionTopicRefusal } from '../mqtt/access.js';
import { connectedClient } from '../mqtt/aedes-internals.js';
import { CommandReplies } from '../remote/command-replies.js';
import { type SessionEndpoint, sessionEndpoint } from '../remote/endpoint.js';
import { ReplicaOrphans } from '../remote/replica-orphans.js';
import { SessionCommands } from '../remote/session-commands.js';
import { SessionRecord } from '../remote/session-record.js';
import { SessionRegistry } from '../remote/session-registry.js';
import { SessionsElsewhere } from '../remote/sessions-elsewhere.js';
import type { HubMqtt } from './mqtt.js';
import type { HubStores } from './stores.js';
import type { HubTelemetry } from './telemetry.js';

/** What the ACL needs of remote access, before the broker starts. */
export interface RemoteAccessAcl {
  isOpenSession(deviceId: string, sessionId: string): boolean;
  onSessionTopicRefused(refusal: SessionTopicRefusal): void;
}

export interface RemoteAccess {
  registry: SessionRegistry;
  acl: RemoteAccessAcl;
  /** Starts the relay on the running broker; its endpoint serves the HTTP and HTTPS upgrades. */
  startRelay(
    mqtt: HubMqtt,
    auth: { authenticator: Authenticator; loginDelay: LoginDelay },
    timings?: SessionTimings,
  ): Promise<SessionEndpoint>;
}

/** Remote-access timings the hub's defaults fix (docs/remote-protocol.md §5); tests shorten them. */
export interface SessionTimings {
  openTimeoutMs?: number;
  pingIntervalMs?: number;
}

export async function remoteAccess(
  stores: HubStores,
  telemetry: HubTelemetry,
  topics: Topics,
  logger: Logger,
  now: () => Date,
  closer: Closer,
  /** One replica of many: the audit trail's open sessions may be other replicas', and a device may be connected to another. */
  clustered = false,
): Promise<RemoteAccess> {
  const registry = new SessionRegistry(() => now().getTime());
  // One replica of many: a device here may publish frames of a session another replica opened.
  const elsewhere = clustered ? new SessionsElsewhere(() => now().getTime()) : undefined;
  if (!clustered) {
    const orphans = await stores.audit.closeOrphans('the hub stopped while the session ran');
    if (orphans > 0) logger.warn({ component: 'remote-access', sessions: orphans }, 'sessions left open by a hub that stopped were closed');
  }
  const record = new SessionRecord({
    audit: stores.audit,
    hubEvent: (deviceId, event) => telemetry.ingest.hubEvent(deviceId, event),
    isKnownDevice: async (id) => (await stores.devices.get(id)) !== undefined,
    topics,
    logger,
    nowMs: () => now().getTime(),
  });
  return {
    registry,
    acl: {
      isOpenSession: (deviceId, sessionId) => registry.isOpen(deviceId, sessionId) || (elsewhere?.isOpen(deviceId, sessionId) ?? false),
      onSessionTopicRefused: (refusal) => record.topicRefused(refusal),
    },
    async startRelay(mqtt, auth, timings = {}) {
      const log = logger.child({ component: 'remote-access' });
      const replies = new CommandReplies(topics, logger);
      await replies.attach(mqtt.bus);
      const commands = new SessionCommands({
        bus: mqtt.bus,
        topics,
        replies,
        logger,
        nowMs: () => now().getTime(),
        ...(timings.openTimeoutMs !== undefined ? { openTimeoutMs: timings.openTimeoutMs } : {}),
      });
      await elsewhere?.attach(mqtt.bus, topics);
      closer.add('command replies', () => replies.close());
      if (elsewhere) await endSessionsOfGoneReplicas(stores, elsewhere, commands, logger, closer);
      await mqtt.bus.subscribe([topics.allSessions('up')], (topic, payload) => {
        const parsed = topics.parse(topic);
        if (parsed?.kind !== 'session') return;
        const session = registry.get(parsed.sessionId);
        // The ACL let the device publish, so this is its session, or one that ended moments ago: dropped.
        if (session?.deviceId === parsed.deviceId) session.link.up(payload);
      });
      mqtt.broker.aedes.on('clientDisconnect', (client) => {
        for (const session of registry.ofDevice(client.id)) session.link.linkLost();
      });
      return sessionEndpoint({
        bus: mqtt.bus,
        topics,
        registry,
        commands,
        record,
        logger: log,
        auth: httpAuth(auth.authenticator, auth.loginDelay, logger),
        isKnownDevice: async (id) => (await stores.devices.get(id)) !== undefined,
        // Connected here, or (another replica's device) online as the database has it: the session's topics cross the cluster.
        isConnected: async (id) =>
          connectedClient(mqtt.broker.aedes, id) !== undefined || (clustered && (await stores.devices.get(id))?.online === true),
        ...(timings.pingIntervalMs !== undefined ? { pingIntervalMs: timings.pingIntervalMs } : {}),
      });
    },
  };
}

/** Sweeps for replicas that are gone (broker/remote/replica-orphans.ts): their sessions end in the audit trail and on the devices. */
async function endSessionsOfGoneReplicas(
  stores: HubStores,
  elsewhere: SessionsElsewhere,
  commands: SessionCommands,
  logger: Logger,
  closer: Closer,
): Promise<void> {
  const { postgres: db, replicaName: self } = stores;
  if (db === undefined || self === undefined) return;
  const { presentHubs } = await import('../store/pg/hub-presence.js');
  const orphans = new ReplicaOrphans({
    audit: stores.audit,
    self,
    present: () => presentHubs(db),
    devices: {
      replicas: () => elsewhere.replicas(),
      end(replica, reason) {
        const sessions = elsewhere.takeOf(replica);
        for (const { deviceId, sessionId } of sessions) commands.close(deviceId, { sessionId, reason });
        return sessions.length;
      },
    },
    logger,
  });
  orphans.start();
  closer.add('replica orphans', () => orphans.stop());
}
