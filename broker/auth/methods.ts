/**
 * API methods for who may connect: registration tokens, service accounts,
 * device revocation (all admin-only; params, results and roles declared in
 * shared/api/methods.ts). Registration itself is an HTTP route of its own
 * (register.ts): the token is its credential.
 */
import { ApiError } from '../dispatcher/errors.js';
import type { ApiHandlersFor } from '../dispatcher/method.js';
import type { Db } from '../store/db.js';
import type { DeviceStore } from '../store/devices.js';
import type { AccountStore } from './accounts.js';
import type { DeviceCredentialStore } from './device-credentials.js';
import type { TokenStore } from './tokens.js';

export interface AuthMethodDeps {
  db: Db;
  accounts: AccountStore;
  credentials: DeviceCredentialStore;
  tokens: TokenStore;
  devices: Pick<DeviceStore, 'get' | 'list'>;
  /** Closes the MQTT connections of `clientIds` (exact ids, or every id under an account); returns how many were closed. */
  disconnect: (match: (clientId: string) => boolean) => number;
}

export const DEFAULT_TOKEN_MAX_USES = 1;
export const DEFAULT_TOKEN_EXPIRES_SECONDS = 24 * 3600;

export type AuthMethodName =
  | 'tokens.create'
  | 'tokens.list'
  | 'tokens.revoke'
  | 'serviceaccounts.create'
  | 'serviceaccounts.list'
  | 'serviceaccounts.delete'
  | 'devices.revoke';

export function authMethods(deps: AuthMethodDeps): ApiHandlersFor<AuthMethodName> {
  const { accounts, credentials, tokens } = deps;

  return {
    'tokens.create': ({ labels, maxUses, expiresInSeconds }) => {
      const { token, stored } = tokens.create({
        labels: labels ?? {},
        maxUses: maxUses ?? DEFAULT_TOKEN_MAX_USES,
        expiresInSeconds: expiresInSeconds ?? DEFAULT_TOKEN_EXPIRES_SECONDS,
      });
      return { id: stored.id, token, labels: stored.labels, maxUses: stored.maxUses, expiresAt: stored.expiresAt };
    },

    'tokens.list': () => ({
      items: tokens.list().map((t) => ({
        id: t.id,
        labels: t.labels,
        maxUses: t.maxUses,
        uses: t.uses,
        expiresAt: t.expiresAt,
        revoked: t.revokedAt !== null,
        createdAt: t.createdAt,
      })),
    }),

    'tokens.revoke': ({ id }) => {
      if (!tokens.revoke(id)) throw ApiError.notFound('token', id);
      return { id, revoked: true };
    },

    'serviceaccounts.create': ({ name, role }) => {
      const key = deps.db.transaction(() => {
        if (accounts.get(name)) throw new ApiError('conflict', `service account "${name}" already exists`);
        const clash = deviceClash(name, deps);
        if (clash) throw new ApiError('conflict', `service account "${name}" would clash with device "${clash}"`);
        return accounts.create(name, role);
      })();
      return { name, role, key };
    },

    'serviceaccounts.list': () => ({
      items: accounts.list().map((a) => ({ name: a.name, role: a.role, createdAt: a.createdAt })),
    }),

    'serviceaccounts.delete': ({ name }) => {
      const account = accounts.get(name);
      if (!account) throw ApiError.notFound('service account', name);
      if (account.role === 'admin' && accounts.admins() === 1) {
        throw new ApiError('invalid_request', `service account "${name}" is the last admin`);
      }
      accounts.delete(name);
      // Its connections go at once: the key no longer exists.
      deps.disconnect((clientId) => clientId === name || clientId.startsWith(`${name}.`));
      return { name, deleted: true };
    },

    'devices.revoke': ({ id }) => {
      if (!deps.devices.get(id) && !credentials.get(id)) throw ApiError.notFound('device', id);
      credentials.revoke(id);
      const disconnected = deps.disconnect((clientId) => clientId === id) > 0;
      return { id, revoked: true, disconnected };
    },
  };
}

/**
 * A device whose id an account named `name` would own as a client id: the
 * name itself or `<name>.<suffix>` (accounts may connect under either).
 */
function deviceClash(name: string, deps: Pick<AuthMethodDeps, 'devices' | 'credentials'>): string | undefined {
  if (deps.devices.get(name) || deps.credentials.get(name)) return name;
  return deps.devices.list().find((d) => d.id.startsWith(`${name}.`))?.id;
}

/** The account that would own `deviceId` as a client id, if any. */
export function accountClash(deviceId: string, accounts: Pick<AccountStore, 'get'>): string | undefined {
  const dot = deviceId.indexOf('.');
  const prefix = dot < 0 ? deviceId : deviceId.slice(0, dot);
  return accounts.get(prefix) ? prefix : undefined;
}
