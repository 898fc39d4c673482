/**
 * The broker's hooks in one place, in the order Aedes calls them, each a
 * short chain of stages (as Aedes' own handlers are):
 *
 * | hook               | stages, in order |
 * |--------------------|------------------|
 * | (stream)           | packet-size cap, before a byte reaches the parser (packet-limit.ts, in startBroker) |
 * | preConnect         | id-clash watch (refuses nothing) → access: the client id as sent → protocol version an agent states (protocol-gate.ts) → admission: per-address, then global rate |
 * | authenticate       | startBroker marks clients with a username for the subscriber guard → access: client id, credentials, login delay |
 * | authorizePublish   | access: topic ACL and API roles → payload caps (acknowledge and drop) → telemetry: encoded payloads decoded, then ingest before the PUBACK |
 * | authorizeSubscribe | startBroker: filter length → access: topic ACL |
 * | authorizeForward   | startBroker: internal topics go nowhere → access: private messages to their owner only → traffic count |
 *
 * The hub's own messages take none of these: it publishes in process
 * (hub-bus.ts), and only authorizeForward sees them, on their way out.
 */
import type { AedesOptions, ConnectPacket } from 'aedes';
import type { Topics } from '../../shared/index.js';
import type { TelemetryIngest } from '../telemetry/ingest.js';
import { ingestBeforeAck } from '../telemetry/ingest-before-ack.js';
import type { AccessControl } from './access.js';
import type { ConnectionAdmission } from './admission.js';
import type { ClientIdClashes } from './id-clash.js';
import type { PayloadLimits } from './payload-limits.js';
import type { ProtocolGate } from './protocol-gate.js';
import type { BrokerTraffic } from './traffic.js';

export type BrokerHooks = Required<
  Pick<AedesOptions, 'preConnect' | 'authenticate' | 'authorizePublish' | 'authorizeSubscribe' | 'authorizeForward'>
>;
type PreConnect = BrokerHooks['preConnect'];

export interface HookStages {
  clashes: Pick<ClientIdClashes, 'preConnect'>;
  access: AccessControl;
  /** Refuses an agent whose protocol version the hub does not speak, before admission spends a token on it. */
  protocol: ProtocolGate;
  admission: Pick<ConnectionAdmission, 'preConnect'>;
  /** Wraps access.authorizePublish (limitPayloads(access.authorizePublish, …)). */
  payloadLimits: Pick<PayloadLimits, 'authorizePublish'>;
  ingest: TelemetryIngest;
  traffic: BrokerTraffic;
  topics: Topics;
}

export function brokerHooks({ clashes, access, protocol, admission, payloadLimits, ingest, traffic, topics }: HookStages): BrokerHooks {
  return {
    preConnect: chainPreConnect(clashes.preConnect, access.preConnect, protocol.preConnect, admission.preConnect),
    authenticate: access.authenticate,
    authorizePublish: ingestBeforeAck(payloadLimits.authorizePublish, topics, ingest),
    authorizeSubscribe: access.authorizeSubscribe,
    authorizeForward: (client, packet) => {
      const allowed = access.authorizeForward(client, packet);
      return allowed ? traffic.onForward(client, allowed) : allowed;
    },
  };
}

/** Runs preConnect hooks in order; the first to refuse (or fail) ends the chain. */
export function chainPreConnect(...hooks: PreConnect[]): PreConnect {
  return (client, packet: ConnectPacket, done) => {
    const next = (i: number) => {
      const hook = hooks[i];
      if (!hook) return done(null, true);
      hook(client, packet, (err, ok) => (err || !ok ? done(err, ok) : next(i + 1)));
    };
    next(0);
  };
}
