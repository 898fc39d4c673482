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
 * - anonymous (only while the hub allows it) has full access, except `$SYS`
 *   and session topics;
 * - a remote-access session's topics (`…/devices/D/sessions/S/{up,down}`) are
 *   D's and the hub's alone, whatever the role: D subscribes to its sessions'
 *   `down` and publishes only on `up` of a session the hub has open for it
 *   (`isOpenSession`); "D" is the device identity, or an anonymous client
 *   whose client id is D (a hub allowing anonymous clients). A filter that
 *   names the sessions level or a session id is refused to everyone else; a
 *   broader one (`#`, `…/devices/+/#`) is granted, and session messages are
 *   delivered from it to nobody but D (`down`). The hub receives `up` through
 *   its in-process subscription, which no ACL stands between.
 *
 * Client ids [MQTT-3.1.3-5]: empty, `+`, `#`, `/` or over 128 characters are
 * refused (empty except for an anonymous client, which gets one the broker
 * assigns) — a client id of `+` subscribing to `…/devices/+/…`
 * would otherwise pass a naive "own id" check. A device must use exactly its
 * id; an account its name or `<name>.<suffix>`; a dashboard user or an
 * anonymous client any id nobody owns, since the same id takes over the
 * owner's session [MQTT-3.1.4-2].
 */
import type { DeviceChannel, SessionDirection, Topics } from '../../shared/index.js';
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

/** Whether the hub has session `sessionId` open for `deviceId` (broker/remote/session-registry.ts). */
export type OpenSessionLookup = (deviceId: string, sessionId: string) => boolean;
/** Where no relay is wired (unit tests of other rules): no session is open. */
const NO_OPEN_SESSIONS: OpenSessionLookup = () => false;

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
  isRegisteredDevice(id: string): Promise<boolean>;
  isAccount(name: string): Promise<boolean>;
}

/** May `identity` connect with `clientId`? Undefined if so, else why not. */
export async function clientIdRefusal(identity: Identity, clientId: string, owners: ClientIdOwners): Promise<string | undefined> {
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

async function ownedBySomeone(clientId: string, owners: ClientIdOwners): Promise<string | undefined> {
  if (await owners.isRegisteredDevice(clientId)) return 'client id belongs to a registered device';
  const dot = clientId.indexOf('.');
  if (await owners.isAccount(dot < 0 ? clientId : clientId.slice(0, dot))) return 'client id belongs to a service account';
  return undefined;
}

export type PublishDecision =
  | { allow: true }
  /** `session`: the topic is a session's (the refusal is audited). */
  | { allow: false; reason: string; session?: true }
  /** An API request on the client's own topic: allowed if its role may call the method (the hook reads it from the payload). */
  | { allow: 'api-request' };

export function decidePublish(
  identity: Identity,
  clientId: string,
  topic: string,
  topics: Topics,
  isOpenSession: OpenSessionLookup = NO_OPEN_SESSIONS,
): PublishDecision {
  if (topic.startsWith(SYS_PREFIX) || topic.startsWith(DROPPED_TOPIC_PREFIX)) return { allow: false, reason: 'reserved topic' };
  // A topic name has no wildcards [MQTT-3.3.2-2]: the filter parser reads its levels, session id unchecked, so a malformed one is refused too.
  const session = topics.parseSessionFilter(topic);
  if (session) return decideSessionPublish(sessionOwner(identity, clientId), session, isOpenSession);
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

function decideSessionPublish(owner: string | undefined, session: SessionLevels, isOpenSession: OpenSessionLookup): PublishDecision {
  const { deviceId, sessionId, direction } = session;
  if (owner === undefined || deviceId !== owner) {
    return { allow: false, reason: "a session's topics are its device's and the hub's alone", session: true };
  }
  if (direction === 'up' && sessionId !== undefined && isOpenSession(owner, sessionId)) return { allow: true };
  return { allow: false, reason: 'a device publishes only on the up topic of a session the hub has open for it', session: true };
}

type SessionLevels = { deviceId: string | undefined; sessionId: string | undefined; direction: SessionDirection | undefined };

/** The device whose session topics this client may use, if any. */
function sessionOwner(identity: Identity, clientId: string): string | undefined {
  if (identity.kind === 'device') return identity.deviceId;
  if (identity.kind === 'anonymous') return clientId;
  return undefined;
}

/**
 * Does a subscription filter reach session topics: not at all (undefined),
 * among others (`broad`: `#`, `…/devices/+/#`; granted by the other rules,
 * delivery filtered by mayReceive), or only them (`only`: it names the
 * `sessions` level or a session id; only the device may hold it).
 */
export function sessionReach(filter: string, topics: Topics): 'broad' | 'only' | undefined {
  const session = topics.parseSessionFilter(filter);
  if (!session) return undefined;
  const depth = topics.root.split('/').length;
  const levels = filter.split('/');
  return levels[depth + 2] === 'sessions' || session.sessionId !== undefined ? 'only' : 'broad';
}

export function maySubscribe(identity: Identity, clientId: string, filter: string, topics: Topics): boolean {
  if (sessionReach(filter, topics) === 'only') {
    const session = topics.parseSessionFilter(filter)!;
    const owner = sessionOwner(identity, clientId);
    return owner !== undefined && session.deviceId === owner && session.direction === 'down';
  }
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
  if (topic.endsWith('/up') || topic.endsWith('/down')) {
    const session = topics.parseSessionFilter(topic);
    if (session) return session.direction === 'down' && session.deviceId === sessionOwner(identity, clientId);
  }
  if (identity.kind === 'anonymous') return true;
  if (!(topic.endsWith('/desired') || topic.endsWith('/commands') || topic.endsWith('/response'))) return true;
  const parsed = topics.parse(topic);
  if (parsed?.kind === 'device') {
    return !PRIVATE_DEVICE_CHANNELS.includes(parsed.channel) || (identity.kind === 'device' && identity.deviceId === parsed.deviceId);
  }
  if (parsed?.kind === 'api') return parsed.channel !== 'response' || parsed.clientId === clientId;
  return true;
}
