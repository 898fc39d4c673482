/**
 * The topic ACL and client-id rules as pure functions of (identity, client
 * id, topic): broker/mqtt/access.ts only looks them up and answers Aedes.
 *
 * - device D publishes only `{root}/devices/D/{state,status,events,logs,metrics,replies}`
 *   and subscribes only to `{root}/devices/D/{desired,commands}`;
 * - viewer subscribes to `{root}/devices/{id|+}/{metrics,state,status,events,logs}`, publishes nothing;
 * - operator and admin: a viewer's subscriptions, plus their own
 *   `{root}/api/{clientId}/request` (publish) and `…/response` (subscribe);
 *   which methods they may call is the role table's (permissions.ts);
 *   admin may subscribe to anything, but some messages reach only their owner:
 * - `…/devices/D/{desired,commands}` (they carry secrets) are delivered only
 *   to device D; `…/api/C/response` only to client C;
 * - no client publishes `…/desired`, `…/api/+/response` or `$SYS/…`: those
 *   are the hub's, which publishes in process (broker/mqtt/hub-bus.ts), not
 *   as a client;
 * - anonymous (only while the hub allows it) has full access, except `$SYS`.
 *
 * Client ids [MQTT-3.1.3-5]: empty, `+`, `#`, `/` or over 128 characters are
 * refused (empty except for an anonymous client, which gets one the broker
 * assigns) — a client id of `+` subscribing to `…/devices/+/…`
 * would otherwise pass a naive "own id" check. A device must use exactly its
 * id; an account its name or `<name>.<suffix>`; a dashboard user or an
 * anonymous client any id nobody owns, since the same id takes over the
 * owner's session [MQTT-3.1.4-2].
 */
import type { DeviceChannel, Topics } from '../../shared/index.js';
import { hasRole, type Identity } from './identity.js';

export const DEVICE_PUBLISH_CHANNELS: readonly DeviceChannel[] = ['state', 'status', 'events', 'logs', 'metrics', 'replies'];
export const DEVICE_SUBSCRIBE_CHANNELS: readonly DeviceChannel[] = ['desired', 'commands'];
/** What a viewer may subscribe to, on one device or on `+`. */
export const VIEWER_CHANNELS: readonly DeviceChannel[] = ['metrics', 'state', 'status', 'events', 'logs'];
/** Only for their owner: they carry secrets. */
const PRIVATE_DEVICE_CHANNELS: readonly string[] = ['desired', 'commands'];

export const MAX_CLIENT_ID_LENGTH = 128;
/** Where the broker moves API requests it answered itself (forbidden): delivered to nobody. */
export const DROPPED_TOPIC_PREFIX = '$flotilla/';
const SYS_PREFIX = '$SYS/';

/** Why a client id is refused for anyone, or undefined. */
export function clientIdProblem(clientId: string): string | undefined {
  if (clientId === '') return 'empty client id';
  if (clientId.length > MAX_CLIENT_ID_LENGTH) return `client id longer than ${MAX_CLIENT_ID_LENGTH} characters`;
  if (/[+#/]/.test(clientId)) return 'client id contains "+", "#" or "/"';
  return undefined;
}

/** Who owns which client ids, as the hub knows it at CONNECT. */
export interface ClientIdOwners {
  /** A device id with credentials (current or revoked). */
  isRegisteredDevice(id: string): boolean;
  isAccount(name: string): boolean;
}

/** May `identity` connect with `clientId`? Undefined if so, else why not. */
export function clientIdRefusal(identity: Identity, clientId: string, owners: ClientIdOwners): string | undefined {
  // MQTT 3.1.1 lets a clean-session client send no id and have the server
  // assign one [MQTT-3.1.3-6] (Aedes: `aedes_<uuid>`, which nobody owns), and
  // mosquitto_sub/pub do so by default. Only anonymous clients, on a hub that
  // lets them in, are given that: every identity has an id it must use.
  if (clientId === '' && identity.kind === 'anonymous') return undefined;
  const problem = clientIdProblem(clientId);
  if (problem) return problem;
  switch (identity.kind) {
    case 'device':
      return clientId === identity.deviceId ? undefined : `a device must use its id "${identity.deviceId}" as client id`;
    case 'account':
      if (!identity.dashboard) {
        return clientId === identity.name || clientId.startsWith(`${identity.name}.`)
          ? undefined
          : `account "${identity.name}" must use "${identity.name}" or "${identity.name}.<suffix>" as client id`;
      }
      return ownedBySomeone(clientId, owners);
    case 'anonymous':
      return ownedBySomeone(clientId, owners);
  }
}

function ownedBySomeone(clientId: string, owners: ClientIdOwners): string | undefined {
  if (owners.isRegisteredDevice(clientId)) return 'client id belongs to a registered device';
  const dot = clientId.indexOf('.');
  if (owners.isAccount(dot < 0 ? clientId : clientId.slice(0, dot))) return 'client id belongs to a service account';
  return undefined;
}

export type PublishDecision =
  | { allow: true }
  | { allow: false; reason: string }
  /** An API request on the client's own topic: allowed if its role may call the method (the hook reads it from the payload). */
  | { allow: 'api-request' };

export function decidePublish(identity: Identity, clientId: string, topic: string, topics: Topics): PublishDecision {
  if (topic.startsWith(SYS_PREFIX) || topic.startsWith(DROPPED_TOPIC_PREFIX)) return { allow: false, reason: 'reserved topic' };
  if (identity.kind === 'anonymous') return { allow: true };
  const parsed = topics.parse(topic);
  if (identity.kind === 'device') {
    const own = parsed?.kind === 'device' && parsed.deviceId === identity.deviceId && DEVICE_PUBLISH_CHANNELS.includes(parsed.channel);
    return own
      ? { allow: true }
      : { allow: false, reason: 'a device publishes only its own state, status, events, logs, metrics and replies' };
  }
  if (!hasRole(identity, 'operator')) return { allow: false, reason: 'a viewer publishes nothing' };
  if (parsed?.kind === 'api' && parsed.channel === 'request' && parsed.clientId === clientId) return { allow: 'api-request' };
  return { allow: false, reason: 'an account publishes only requests on its own client id' };
}

export function maySubscribe(identity: Identity, clientId: string, filter: string, topics: Topics): boolean {
  if (identity.kind === 'anonymous') return !filter.startsWith(DROPPED_TOPIC_PREFIX);
  if (identity.kind === 'device') {
    const parsed = topics.parseDeviceFilter(filter);
    return parsed?.deviceId === identity.deviceId && DEVICE_SUBSCRIBE_CHANNELS.includes(parsed.channel);
  }
  if (hasRole(identity, 'admin')) return !filter.startsWith(DROPPED_TOPIC_PREFIX);
  const device = topics.parseDeviceFilter(filter);
  if (device) return VIEWER_CHANNELS.includes(device.channel);
  if (!hasRole(identity, 'operator')) return false;
  const api = topics.parse(filter);
  return api?.kind === 'api' && api.channel === 'response' && api.clientId === clientId;
}

/**
 * May a message on `topic` be delivered to this subscriber? Called for every
 * delivery, so it parses only topics that can be private.
 */
export function mayReceive(identity: Identity, clientId: string, topic: string, topics: Topics): boolean {
  if (topic.startsWith(DROPPED_TOPIC_PREFIX)) return false;
  if (identity.kind === 'anonymous') return true;
  if (!(topic.endsWith('/desired') || topic.endsWith('/commands') || topic.endsWith('/response'))) return true;
  const parsed = topics.parse(topic);
  if (parsed?.kind === 'device') {
    return !PRIVATE_DEVICE_CHANNELS.includes(parsed.channel) || (identity.kind === 'device' && identity.deviceId === parsed.deviceId);
  }
  if (parsed?.kind === 'api') return parsed.channel !== 'response' || parsed.clientId === clientId;
  return true;
}
