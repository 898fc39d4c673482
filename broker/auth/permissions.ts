/**
 * The role each API method needs: one table, used by the HTTP API (bearer
 * keys) and by the broker for the MQTT request API (authorizePublish on
 * `api/{clientId}/request`), so both transports refuse alike.
 *
 * - viewer: reads (lists, gets, queries, history, rollout status, top);
 * - operator: + deploying (apps, rollouts), labels, secrets;
 * - admin: + registration tokens, service accounts, revoking devices.
 *
 * A method missing from the table needs admin: a new method is closed until
 * someone decides who may call it.
 */
import { hasRole, type Identity, type Role } from './identity.js';

export const METHOD_ROLES: Readonly<Record<string, Role>> = {
  'apps.list': 'viewer',
  'apps.get': 'viewer',
  'apps.history': 'viewer',
  'rollouts.status': 'viewer',
  'devices.list': 'viewer',
  'devices.get': 'viewer',
  'devices.top': 'viewer',
  'secrets.list': 'viewer',
  'logs.query': 'viewer',
  'events.query': 'viewer',
  'metrics.query': 'viewer',

  'apps.apply': 'operator',
  'apps.delete': 'operator',
  'apps.rollback': 'operator',
  'apps.force': 'operator',
  'apps.retry': 'operator',
  'rollouts.pause': 'operator',
  'rollouts.resume': 'operator',
  'rollouts.abort': 'operator',
  'devices.label': 'operator',
  'secrets.set': 'operator',
  'secrets.delete': 'operator',

  'tokens.create': 'admin',
  'tokens.list': 'admin',
  'tokens.revoke': 'admin',
  'serviceaccounts.create': 'admin',
  'serviceaccounts.list': 'admin',
  'serviceaccounts.delete': 'admin',
  'devices.revoke': 'admin',
};

/** Reads by their name's shape, for methods added without an entry (`*.list`, `*.get`, `*.query`, `*.history`). */
const READ_METHOD = /\.(list|get|query|history)$/;

export function requiredRole(method: string): Role {
  if (Object.hasOwn(METHOD_ROLES, method)) return METHOD_ROLES[method]!;
  return READ_METHOD.test(method) && !method.startsWith('tokens.') && !method.startsWith('serviceaccounts.') ? 'viewer' : 'admin';
}

export function mayCall(identity: Identity, method: string): boolean {
  return hasRole(identity, requiredRole(method));
}
