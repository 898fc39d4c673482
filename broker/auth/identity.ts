/**
 * Who a client of the hub is, once authenticated: over MQTT (CONNECT's
 * username and password, or a verified client certificate) and over HTTP
 * (a bearer API key). Every access decision is a function of an Identity.
 */

export const ROLES = ['viewer', 'operator', 'admin'] as const;
/** Ordered: each role may do everything the one before it may. */
export type Role = (typeof ROLES)[number];

export type Identity =
  /** No credentials at all; exists only while the hub allows anonymous clients (today's full access). */
  | { kind: 'anonymous' }
  /** username = device id, password = device secret; or a verified client certificate's CN. */
  | { kind: 'device'; deviceId: string }
  /** A service account (API key) or a read-only dashboard user (`readOnlyUsers`, a viewer). */
  | { kind: 'account'; name: string; role: Role; dashboard?: true };

export const ANONYMOUS: Identity = { kind: 'anonymous' };

export function isRole(value: unknown): value is Role {
  return typeof value === 'string' && (ROLES as readonly string[]).includes(value);
}

/** Does the identity hold at least `role`? (Allowed) anonymous clients hold every role; devices none. */
export function hasRole(identity: Identity, role: Role): boolean {
  if (identity.kind === 'anonymous') return true;
  if (identity.kind === 'device') return false;
  return ROLES.indexOf(identity.role) >= ROLES.indexOf(role);
}

/** For log lines: never a secret, just who. */
export function describeIdentity(identity: Identity): Record<string, string> {
  switch (identity.kind) {
    case 'device':
      return { identity: 'device', deviceId: identity.deviceId };
    case 'account':
      return { identity: identity.dashboard ? 'dashboard' : 'account', account: identity.name, role: identity.role };
    default:
      return { identity: identity.kind };
  }
}
