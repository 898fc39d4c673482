/**
 * The role each API method needs, read from the API declaration
 * (shared/api/methods.ts): one table, used by the HTTP API (bearer keys) and
 * by the broker for the MQTT request API (authorizePublish on
 * `api/{clientId}/request`), so both transports refuse alike.
 *
 * - viewer: reads (lists, gets, queries, history, rollout status, top);
 * - operator: + deploying (apps, rollouts), labels, secrets;
 * - admin: + registration tokens, service accounts, revoking devices.
 *
 * A name that is not a declared method (the broker sees every request's
 * method before the hub knows whether it exists) needs admin, unless its
 * shape says it only reads: such a caller is then told `unknown_method`
 * rather than `forbidden`.
 */
import { API, API_METHOD_NAMES, isApiMethod } from '../../shared/index.js';
import { hasRole, type Identity, type Role } from './identity.js';

/** Every declared method and its role (ApiRole and Role are one list: test/unit/api-declaration.test.ts). */
export const METHOD_ROLES: Readonly<Record<string, Role>> = Object.fromEntries(API_METHOD_NAMES.map((name) => [name, API[name].role]));

/** Reads by their name's shape, for names that are not declared methods (`*.list`, `*.get`, `*.query`, `*.history`). */
const READ_METHOD = /\.(list|get|query|history)$/;

export function requiredRole(method: string): Role {
  if (isApiMethod(method)) return API[method].role;
  return READ_METHOD.test(method) && !method.startsWith('tokens.') && !method.startsWith('serviceaccounts.') ? 'viewer' : 'admin';
}

export function mayCall(identity: Identity, method: string): boolean {
  return hasRole(identity, requiredRole(method));
}
