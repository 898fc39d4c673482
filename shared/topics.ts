/**
 * The one place where MQTT topics are built and parsed. Nothing else in the
 * code base concatenates topic strings.
 */
import { isDeviceId } from './ids.js';

export const DEFAULT_TOPIC_ROOT = 'flotilla/v1';

export const DEVICE_CHANNELS = ['desired', 'commands', 'replies', 'state', 'status', 'events', 'logs', 'metrics'] as const;
export type DeviceChannel = (typeof DEVICE_CHANNELS)[number];

export const API_CHANNELS = ['request', 'response'] as const;
export type ApiChannel = (typeof API_CHANNELS)[number];

/** MQTT client ids that may appear in API topics: no wildcards, no separators. */
const API_CLIENT_ID_RE = /^[A-Za-z0-9._-]{1,128}$/;

export type ParsedTopic =
  | { kind: 'device'; deviceId: string; channel: DeviceChannel }
  | { kind: 'api'; clientId: string; channel: ApiChannel };

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
}
