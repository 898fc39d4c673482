/**
 * What the CLI shows and sends for access control beyond the API methods
 * (their bodies are declared in shared/api/): the roles in the order the CLI
 * lists them, and the registration route, which is no method (the token in
 * its body is the credential).
 */
import type { ApiRole, Labels } from '../shared/index.js';

export type Role = ApiRole;
/** Most powerful first, as `--role` lists them. */
export const ROLES: readonly Role[] = ['admin', 'operator', 'viewer'];

export interface RegisterRequest {
  token: string;
  deviceId?: string;
  labels?: Labels;
}

/** What a device gets for its registration token: its identity, and the hub's key to pin. */
export interface Registration {
  deviceId: string;
  secret: string;
  hubKey: string;
  /** `url`: the MQTT URL the hub announces (its --agent-mqtt-url), when it does. */
  mqtt: { port: number; tlsPort?: number; url?: string };
}
