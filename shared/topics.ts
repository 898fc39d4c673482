/**
 * The one place where MQTT topics are built and parsed. Nothing else in the
 * code base concatenates topic strings.
 */
import { isDeviceId } from './ids.js';
import { isSessionId } from './remote/session-id.js';

export const DEFAULT_TOPIC_ROOT = 'flotilla/v1';

export const DEVICE_CHANNELS = ['desired', 'commands', 'replies', 'state', 'status', 'events', 'logs', 'metrics'] as const;
export type DeviceChannel = (typeof DEVICE_CHANNELS)[number];

export const API_CHANNELS = ['request', 'response'] as const;
export type ApiChannel = (typeof API_CHANNELS)[number];

/** MQTT client ids that may appear in API topics: no wildcards, no separators. */
const API_CLIENT_ID_RE = /^[A-Za-z0-9._-]{1,128}$/;

/**
 * A remote-access session's data (shared/remote/): `up` from the device to
 * the session's opener, `down` from the opener to the device.
 */
export const SESSION_DIRECTIONS = ['up', 'down'] as const;
export type SessionDirection = (typeof SESSION_DIRECTIONS)[number];

export type ParsedTopic =
  | { kind: 'device'; deviceId: string; channel: DeviceChannel }
  | { kind: 'api'; clientId: string; channel: ApiChannel }
  | { kind: 'session'; deviceId: string; sessionId: string; direction: SessionDirection };

export class Topics {
  constructor(readonly root: string = DEFAULT_TOPIC_ROOT) {
    if (root === '' || /[+#]/.test(root) || root.startsWith('/') || root.endsWith('/')) {
      throw new Error(`invalid topic root "${root}": no wildcards, no leading or trailing "/"`);
    }
  }

  device(deviceId: string, channel: DeviceChannel): string {
    if (!isDeviceId(deviceId)) throw new Error(`invalid device id "${deviceId}"`);
    return `${this.root}/devices/${deviceId}/${channel}`;
  }

  /** Subscription filter for one channel of every device, e.g. `flotilla/v1/devices/+/state`. */
  allDevices(channel: DeviceChannel): string {
    return `${this.root}/devices/+/${channel}`;
  }

  api(clientId: string, channel: ApiChannel): string {
    if (!API_CLIENT_ID_RE.test(clientId)) throw new Error(`invalid API client id "${clientId}"`);
    return `${this.root}/api/${clientId}/${channel}`;
  }

  /** `{root}/devices/{id}/sessions/{sessionId}/{up|down}`. */
  session(deviceId: string, sessionId: string, direction: SessionDirection): string {
    if (!isDeviceId(deviceId)) throw new Error(`invalid device id "${deviceId}"`);
    if (!isSessionId(sessionId)) throw new Error(`invalid session id "${sessionId}"`);
    return `${this.root}/devices/${deviceId}/sessions/${sessionId}/${direction}`;
  }

  /** Subscription filter for one direction of every session of one device (the agent's: `…/devices/D/sessions/+/down`). */
  deviceSessions(deviceId: string, direction: SessionDirection): string {
    if (!isDeviceId(deviceId)) throw new Error(`invalid device id "${deviceId}"`);
    return `${this.root}/devices/${deviceId}/sessions/+/${direction}`;
  }

  /** Subscription filter for one direction of every session of every device (the hub's: `…/devices/+/sessions/+/up`). */
  allSessions(direction: SessionDirection): string {
    return `${this.root}/devices/+/sessions/+/${direction}`;
  }

  /**
   * Parses a subscription filter that names session topics: `deviceId` and
   * `sessionId` are undefined where the filter has `+`, `direction` where it
   * ends in `#` or `+`. Undefined for a filter that cannot match a session
   * topic. Used by the ACL, which must catch `…/devices/+/#` as well as the
   * exact topic.
   */
  parseSessionFilter(
    filter: string,
  ): { deviceId: string | undefined; sessionId: string | undefined; direction: SessionDirection | undefined } | undefined {
    const levels = filter.split('/');
    const rootLevels = this.root.split('/');
    // Could the filter's levels match `{root}/devices/{id}/sessions/{sid}/{dir}`? Each level equal, `+`, or a `#` that swallows the rest.
    const pattern = [...rootLevels, 'devices', '*', 'sessions', '*', '*'];
    const captured: string[] = [];
    for (let i = 0; i < pattern.length; i++) {
      const level = levels[i];
      if (level === undefined) return undefined;
      if (level === '#') return { deviceId: named(captured[0]), sessionId: named(captured[1]), direction: undefined };
      const want = pattern[i]!;
      if (want === '*') {
        captured.push(level);
        continue;
      }
      if (level !== '+' && level !== want) return undefined;
    }
    if (levels.length !== pattern.length) return undefined;
    const [id, sid, dir] = captured as [string, string, string];
    if (dir !== '+' && !(SESSION_DIRECTIONS as readonly string[]).includes(dir)) return undefined;
    return { deviceId: named(id), sessionId: named(sid), direction: named(dir) as SessionDirection | undefined };
  }

  /** Subscription filter for requests from every API client. */
  allApiRequests(): string {
    return `${this.root}/api/+/request`;
  }

  /**
   * Parses a subscription filter on one channel of one device or of every
   * device (`…/devices/{id}/{channel}` or `…/devices/+/{channel}`); `deviceId`
   * is undefined for the `+`. Undefined for any other filter: `#`, a `+` in
   * another level, a channel that is not Flotilla's.
   */
  parseDeviceFilter(filter: string): { deviceId: string | undefined; channel: DeviceChannel } | undefined {
    const prefix = `${this.root}/devices/`;
    if (!filter.startsWith(prefix)) return undefined;
    const parts = filter.slice(prefix.length).split('/');
    if (parts.length !== 2) return undefined;
    const [id, channel] = parts as [string, string];
    if (!(DEVICE_CHANNELS as readonly string[]).includes(channel)) return undefined;
    if (id === '+') return { deviceId: undefined, channel: channel as DeviceChannel };
    return isDeviceId(id) ? { deviceId: id, channel: channel as DeviceChannel } : undefined;
  }

  /** Returns undefined for any topic that is not exactly one of Flotilla's. */
  parse(topic: string): ParsedTopic | undefined {
    const prefix = `${this.root}/`;
    if (!topic.startsWith(prefix)) return undefined;
    const parts = topic.slice(prefix.length).split('/');
    if (parts.length === 5) return this.parseSession(parts);
    if (parts.length !== 3) return undefined;
    const [kind, id, channel] = parts as [string, string, string];
    if (kind === 'devices' && isDeviceId(id) && (DEVICE_CHANNELS as readonly string[]).includes(channel)) {
      return { kind: 'device', deviceId: id, channel: channel as DeviceChannel };
    }
    if (kind === 'api' && API_CLIENT_ID_RE.test(id) && (API_CHANNELS as readonly string[]).includes(channel)) {
      return { kind: 'api', clientId: id, channel: channel as ApiChannel };
    }
    return undefined;
  }

  private parseSession(parts: string[]): ParsedTopic | undefined {
    const [kind, id, sessions, sessionId, direction] = parts as [string, string, string, string, string];
    if (kind !== 'devices' || sessions !== 'sessions' || !isDeviceId(id) || !isSessionId(sessionId)) return undefined;
    if (!(SESSION_DIRECTIONS as readonly string[]).includes(direction)) return undefined;
    return { kind: 'session', deviceId: id, sessionId, direction: direction as SessionDirection };
  }
}

/** A filter level's value, or undefined for a wildcard or a level the filter does not reach. */
function named(level: string | undefined): string | undefined {
  return level === '+' ? undefined : level;
}
