/**
 * The hub refuses an agent whose application protocol version it does not
 * speak (shared/protocol-version.ts), as a `preConnect` stage: before Aedes
 * restores the device's session (its queued desired state would go to an
 * agent that may misread it) and before the credential check (a fleet of
 * outdated agents retrying costs the hub no password hashing).
 *
 * An agent states its version in its will, the offline status it leaves on
 * its own status topic; a CONNECT whose will is anything else is not an
 * agent's (a CLI, a service, a dashboard) and passes. An agent's will without
 * a version predates the statement: version 1 (UNSTATED_PROTOCOL_VERSION).
 *
 * A refused agent gets CONNACK return code 1 (connack-refusal.ts), which it
 * logs as one line and answers with a long backoff (agent/link.ts). The hub
 * says so in a log line naming the device and both sides' versions, and in a
 * `protocol-refused` event on a device it knows, each at most once per device
 * per REPORT_INTERVAL_MS: the id is only claimed at this point, and a claim
 * must not fill a device's events.
 */
import type { AedesOptions, Client, ConnectPacket } from 'aedes';
import type { Logger } from 'pino';
import { isDeviceId, type Topics } from '../../shared/index.js';
import { CONNACK_UNACCEPTABLE_PROTOCOL, PROTOCOL_VERSIONS, UNSTATED_PROTOCOL_VERSION } from '../../shared/protocol-version.js';
import { remoteAddress } from './client-address.js';
import { refuseConnect } from './connack-refusal.js';

type PreConnectHandler = NonNullable<AedesOptions['preConnect']>;

/** How often at most one device's refusals are logged at warn and become an event. */
export const REPORT_INTERVAL_MS = 60 * 60_000;
/** Devices whose last report is remembered; past it the oldest is forgotten (and may be reported again early). */
const MAX_REMEMBERED = 10_000;

export interface ProtocolRefusal {
  deviceId: string;
  /** The version the agent states. */
  protocol: number;
  /** The versions this hub speaks. */
  hubProtocols: readonly number[];
  address: string | undefined;
}

export interface ProtocolGateOptions {
  topics: Topics;
  logger: Logger;
  /** The versions this hub speaks (default PROTOCOL_VERSIONS; tests play other hubs). */
  versions?: readonly number[];
  /** Told of a refusal, at most once per device per REPORT_INTERVAL_MS (the hub records a device event). */
  onRefused?: (refusal: ProtocolRefusal) => void;
  now?: () => number;
}

/**
 * The protocol version a CONNECT states, or undefined for a client that is
 * not an agent (no will on its own device status topic). A will that is not a
 * JSON object with an integer `protocol` states nothing: version 1.
 */
export function statedProtocol(packet: Pick<ConnectPacket, 'clientId' | 'will'>, topics: Topics): number | undefined {
  const will = packet.will;
  if (!will) return undefined;
  const parsed = topics.parse(will.topic);
  if (parsed?.kind !== 'device' || parsed.channel !== 'status' || parsed.deviceId !== packet.clientId) return undefined;
  try {
    const status = JSON.parse(Buffer.from(will.payload).toString('utf8')) as { protocol?: unknown } | null;
    const protocol = status?.protocol;
    return Number.isSafeInteger(protocol) ? (protocol as number) : UNSTATED_PROTOCOL_VERSION;
  } catch {
    return UNSTATED_PROTOCOL_VERSION;
  }
}

/**
 * A connected client is an agent when it left its offline status on its own
 * device status topic as its will: what statedProtocol reads at CONNECT,
 * asked of a client later (link byte counters, telemetry link commands).
 */
export function isAgentClient(client: Client, topics: Topics): boolean {
  const will = (client as Client & { will?: { topic?: string } | null }).will;
  return isDeviceId(client.id) && will?.topic === topics.device(client.id, 'status');
}

/** What the operator reads, on the hub (and in the device's events). */
export function refusalMessage(refusal: Pick<ProtocolRefusal, 'deviceId' | 'protocol' | 'hubProtocols'>): string {
  const newer = refusal.protocol > Math.max(...refusal.hubProtocols);
  return (
    `refused the agent of device ${refusal.deviceId}: it speaks protocol version ${refusal.protocol}, ` +
    `this hub speaks [${refusal.hubProtocols.join(', ')}]: ${newer ? 'upgrade the hub' : 'upgrade the agent'}`
  );
}

export interface ProtocolGate {
  preConnect: PreConnectHandler;
}

export function createProtocolGate(options: ProtocolGateOptions): ProtocolGate {
  const log = options.logger.child({ component: 'mqtt-protocol' });
  const versions = options.versions ?? PROTOCOL_VERSIONS;
  const now = options.now ?? Date.now;
  const lastReported = new Map<string, number>();

  /** Whether this refusal is the device's first in REPORT_INTERVAL_MS (and remembers it if so). */
  const due = (deviceId: string): boolean => {
    const at = now();
    const last = lastReported.get(deviceId);
    if (last !== undefined && at - last < REPORT_INTERVAL_MS) return false;
    lastReported.delete(deviceId);
    lastReported.set(deviceId, at);
    if (lastReported.size > MAX_REMEMBERED) lastReported.delete(lastReported.keys().next().value as string);
    return true;
  };

  return {
    preConnect(client, packet, callback) {
      const protocol = statedProtocol(packet, options.topics);
      if (protocol === undefined || versions.includes(protocol)) return callback(null, true);
      const refusal: ProtocolRefusal = { deviceId: packet.clientId, protocol, hubProtocols: versions, address: remoteAddress(client) };
      if (due(refusal.deviceId)) {
        log.warn({ deviceId: refusal.deviceId, address: refusal.address, protocol, hubProtocols: versions }, refusalMessage(refusal));
        options.onRefused?.(refusal);
      } else {
        log.debug({ deviceId: refusal.deviceId, address: refusal.address, protocol }, 'agent refused again: protocol version');
      }
      const err = Object.assign(new Error(`unacceptable protocol version ${protocol}`), { returnCode: CONNACK_UNACCEPTABLE_PROTOCOL });
      refuseConnect(client, CONNACK_UNACCEPTABLE_PROTOCOL, err, callback);
    },
  };
}
