/**
 * The hub's MQTT side: the embedded broker behind its hooks (mqtt/hooks.ts),
 * the in-process bus the hub publishes and subscribes on, presence, and the
 * watch for two devices sharing an id.
 */
import type { Logger } from 'pino';
import type { Closer } from '../../shared/closer.js';
import { type DeviceStatus, Topics } from '../../shared/index.js';
import { Signal } from '../../shared/signal.js';
import type { Authenticator } from '../auth/authenticator.js';
import type { LoginDelay } from '../auth/login-delay.js';
import type { HubConfig } from '../config.js';
import { requestTooLargeAnswer } from '../dispatcher/api-requests.js';
import { type ApiAnswer, createAccessControl } from '../mqtt/access.js';
import { type ConnectionAdmission, createConnectionAdmission } from '../mqtt/admission.js';
import { closeClients, connectedClient } from '../mqtt/aedes-internals.js';
import { type EmbeddedBroker, startBroker } from '../mqtt/broker.js';
import { brokerHooks } from '../mqtt/hooks.js';
import { type HubBus, hubBus } from '../mqtt/hub-bus.js';
import { ClientIdClashes } from '../mqtt/id-clash.js';
import { LinkBytes } from '../mqtt/link-bytes.js';
import { limitPayloads, type PayloadLimits } from '../mqtt/payload-limits.js';
import { DevicePresence } from '../mqtt/presence.js';
import { createProtocolGate, refusalMessage } from '../mqtt/protocol-gate.js';
import { tlsPeerCommonName } from '../mqtt/tls-identity.js';
import { BrokerTraffic } from '../mqtt/traffic.js';
import { TelemetryLinkTuning } from '../telemetry/link-tuning.js';
import type { RemoteAccessAcl } from './remote.js';
import type { HubStores } from './stores.js';
import type { HubTelemetry } from './telemetry.js';

export interface HubMqtt {
  broker: EmbeddedBroker;
  topics: Topics;
  /** The hub's own way onto the broker. */
  bus: HubBus;
  /** Responses for API callers (the request router's and the access control's `forbidden`), published on their response topics. */
  answers: Signal<ApiAnswer>;
  clashes: ClientIdClashes;
  traffic: BrokerTraffic;
  admission: ConnectionAdmission;
  payloadLimits: PayloadLimits;
  /** Each device's bytes on its MQTT connections. */
  linkBytes: LinkBytes;
  /** How devices send telemetry: the encodings this hub decodes, and live log windows while someone follows. */
  telemetryLink: TelemetryLinkTuning;
  /** Closes the connections whose client ids match (a revoked device, a deleted account); how many. */
  disconnect(match: (clientId: string) => boolean): number;
}

export interface HubMqttDeps {
  stores: HubStores;
  telemetry: HubTelemetry;
  authenticator: Authenticator;
  loginDelay: LoginDelay;
  logger: Logger;
  now: () => Date;
  /** The protocol versions the hub speaks (default PROTOCOL_VERSIONS). */
  protocolVersions?: readonly number[];
  /** The telemetry encodings the hub offers devices (default: every one it decodes; tests play an older hub with []). */
  telemetryEncodings?: readonly string[];
  /** The open remote-access sessions, for the ACL of their topics, and where refusals on them are audited. */
  sessions?: RemoteAccessAcl;
}

export async function startHubMqtt(config: HubConfig, deps: HubMqttDeps, closer: Closer): Promise<HubMqtt> {
  const { stores, telemetry, logger } = deps;
  const topics = new Topics(config.topicRoot);
  const answers = new Signal<ApiAnswer>((err) => logger.error({ component: 'hub', err }, 'publishing an API response failed'));
  const access = createAccessControl({
    authenticator: deps.authenticator,
    owners: {
      isRegisteredDevice: async (id) => (await stores.credentials.get(id)) !== undefined,
      isAccount: async (name) => (await stores.accounts.get(name)) !== undefined,
    },
    topics,
    logger,
    loginDelay: deps.loginDelay,
    peerCommonName: tlsPeerCommonName,
    answers,
    ...(deps.sessions ? { isOpenSession: deps.sessions.isOpenSession, onSessionTopicRefused: deps.sessions.onSessionTopicRefused } : {}),
  });
  const admission = createConnectionAdmission({
    rate: config.maxConnectRate,
    ratePerAddress: config.maxConnectRatePerAddress,
    logger,
  });
  const clashes = new ClientIdClashes({
    isDevice: async (id) => (await stores.devices.get(id)) !== undefined || (await stores.credentials.get(id)) !== undefined,
    onClash: (clash) => {
      logger.warn({ component: 'hub', ...clash }, 'two connections use one device id');
      telemetry.ingest.hubEvent(clash.deviceId, {
        type: 'device-id-clash',
        message: `${clash.takeovers} connections took device id ${clash.deviceId} from each other within 10 minutes (from ${clash.addresses.join(', ')}): two devices share this id (a copied SD card?); give each its own with flotilla agent register`,
      });
    },
  });
  const protocol = createProtocolGate({
    topics,
    logger,
    ...(deps.protocolVersions !== undefined ? { versions: deps.protocolVersions } : {}),
    onRefused: (refusal) => {
      stores.devices.get(refusal.deviceId).then(
        (device) => {
          if (device) telemetry.ingest.hubEvent(refusal.deviceId, { type: 'protocol-refused', message: refusalMessage(refusal) });
        },
        (err: unknown) => logger.warn({ component: 'hub', deviceId: refusal.deviceId, err }, 'recording a protocol refusal failed'),
      );
    },
  });
  const traffic = new BrokerTraffic(topics);
  const linkBytes = new LinkBytes(topics);
  const payloadLimits = limitPayloads(access.authorizePublish, {
    topics,
    logger,
    onRequestTooLarge: (clientId, payload, limit) => answers.emit({ clientId, response: requestTooLargeAnswer(payload, limit) }),
  });
  const broker = await startBroker({
    host: config.host,
    mqttPort: config.mqttPort,
    wsPort: config.wsPort,
    logger,
    maxPacketBytes: config.maxPacketBytes,
    linkBytes,
    ...(config.redis !== undefined
      ? { cluster: { url: config.redis, sweptWills: ownStatusOnly(topics), ...(stores.replicaName ? { id: stores.replicaName } : {}) } }
      : {}),
    hooks: brokerHooks({ clashes, access, protocol, admission, payloadLimits, ingest: telemetry.ingest, traffic, topics }),
  });
  closer.add('MQTT broker', () => broker.close());
  // Closed before the broker (closers run in reverse): connections held for a token are let go first.
  closer.add('connection admission', () => admission.close());
  const bus = hubBus(broker.aedes);
  broker.aedes.on('publish', traffic.onPublish);
  answers.on(({ clientId, response }) => {
    bus.publish(topics.api(clientId, 'response'), JSON.stringify(response), { qos: 1 }).catch((err: Error) => {
      logger.warn({ component: 'hub', clientId, err: err.message }, 'publishing an API response failed');
    });
  });
  const presence = new DevicePresence({
    devices: stores.devices,
    logger,
    now: deps.now,
    movedAway: broker.tookOverElsewhere,
    // The retained offline status the device's will would have published, so dashboards on the status topic agree.
    onDisconnected: (deviceId) => {
      const offline: DeviceStatus = { online: false, at: deps.now().toISOString() };
      bus.publish(topics.device(deviceId, 'status'), JSON.stringify(offline), { qos: 1, retain: true }).catch((err: Error) => {
        logger.warn({ component: 'presence', deviceId, err: err.message }, 'publishing offline status failed');
      });
    },
  });
  presence.attach(broker.aedes);
  const telemetryLink = new TelemetryLinkTuning({
    bus,
    topics,
    logger,
    isConnected: (deviceId) => connectedClient(broker.aedes, deviceId) !== undefined,
    ...(deps.telemetryEncodings !== undefined ? { encodings: deps.telemetryEncodings } : {}),
  });
  telemetryLink.attach(broker.aedes);
  closer.add('telemetry link tuning', () => telemetryLink.close());
  clashes.attach(broker.aedes, broker.tookOverElsewhere);
  closer.add('presence', () => presence.stop());
  return {
    broker,
    topics,
    bus,
    answers,
    clashes,
    traffic,
    admission,
    payloadLimits,
    linkBytes,
    telemetryLink,
    disconnect: (match) => closeClients(broker.aedes, match),
  };
}

/**
 * The wills a replica publishes for the clients of a dead one, which it can no
 * longer authenticate: a device's offline status on its own status topic (what
 * agents set), nothing else (broker/mqtt/cluster-wills.ts).
 */
function ownStatusOnly(topics: Topics): (clientId: string, topic: string) => boolean {
  return (clientId, topic) => {
    try {
      return topic === topics.device(clientId, 'status');
    } catch {
      return false; // not a device id
    }
  };
}
