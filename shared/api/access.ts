/**
 * What the methods for who may connect return (registration tokens, service
 * accounts, device revocation), and the roles that gate every method.
 */
import type { Labels } from '../schemas/spec.js';

/** Ordered: each role may do everything the one before it may. */
export const API_ROLES = ['viewer', 'operator', 'admin'] as const;
export type ApiRole = (typeof API_ROLES)[number];

/** `tokens.create`. `token` is shown this once; the hub keeps only its hash. */
export interface TokenCreated {
  id: string;
  token: string;
  labels: Labels;
  maxUses: number | null;
  expiresAt: string | null;
}

/** One entry of `tokens.list`. */
export interface TokenInfo {
  id: string;
  labels: Labels;
  maxUses: number | null;
  uses: number;
  expiresAt: string | null;
  revoked: boolean;
  createdAt: string;
}

/** `tokens.revoke`. */
export interface TokenRevoked {
  id: string;
  revoked: true;
}

/** `serviceaccounts.create`. `key` is shown this once; it is the account's MQTT password and HTTP bearer token. */
export interface ServiceAccountCreated {
  name: string;
  role: ApiRole;
  key: string;
}

/** One entry of `serviceaccounts.list`. */
export interface ServiceAccountInfo {
  name: string;
  role: ApiRole;
  createdAt: string;
}

/** `devices.revoke`: `disconnected` says whether the device was connected (it is not any more). */
export interface DeviceRevoked {
  id: string;
  revoked: true;
  disconnected: boolean;
}
