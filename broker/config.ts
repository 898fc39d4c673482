/**
 * The hub's one typed configuration, with defaults that give a working hub on
 * a laptop: in-process broker, SQLite under ./data, loopback only.
 */
import { type Static, Type } from '@sinclair/typebox';
import { DEFAULT_TOPIC_ROOT, formatIssues, validate } from '../shared/index.js';
import { LogLevelSchema } from './logger.js';

const Port = Type.Integer({ minimum: 0, maximum: 65535 });

export const HubConfig = Type.Object(
  {
    dataDir: Type.String({ minLength: 1 }),
    /**
     * Loopback by default: until per-device credentials exist, exposing the
     * broker beyond this machine is a deliberate act (`--host 0.0.0.0`).
     */
    host: Type.String({ minLength: 1 }),
    mqttPort: Port,
    /** MQTT over WebSocket, for dashboards in a browser. */
    wsPort: Port,
    httpPort: Port,
    topicRoot: Type.String({ minLength: 1 }),
    logLevel: LogLevelSchema,
  },
  { additionalProperties: false },
);
export type HubConfig = Static<typeof HubConfig>;

export const HUB_DEFAULTS: HubConfig = {
  dataDir: './data',
  host: '127.0.0.1',
  mqttPort: 1883,
  wsPort: 8083,
  httpPort: 7070,
  topicRoot: DEFAULT_TOPIC_ROOT,
  logLevel: 'info',
};

export function resolveHubConfig(overrides: Partial<Record<keyof HubConfig, unknown>>): HubConfig {
  const merged = { ...HUB_DEFAULTS, ...Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined)) };
  const result = validate(HubConfig, merged);
  if (!result.ok) throw new Error(`invalid hub configuration:\n${formatIssues(result.issues)}`);
  return result.value;
}
