/**
 * API methods for who may connect: registration tokens, service accounts,
 * device revocation (all admin-only; params, results and roles declared in
 * shared/api/methods.ts). Registration itself is an HTTP route of its own
 * (register.ts): the token is its credential.
 */
import { ApiError } from '../dispatcher/errors.js';
import type { ApiHandlersFor } from '../dispatcher/method.js';
import type { DeviceStore } from '../store/devices.js';
import type { AccountStore } from './accounts.js';
import type { DeviceCredentialStore } from './device-credentials.js';
import type { TokenStore } from './tokens.js';

export interface AuthMethodDeps {
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
    'tokens.create': async ({ labels, maxUses, expiresInSeconds }) => {
      const { token, stored } = await tokens.create({
        labels: labels ?? {},
        maxUses: maxUses ?? DEFAULT_TOKEN_MAX_USES,
        expiresInSeconds: expiresInSeconds ?? DEFAULT_TOKEN_EXPIRES_SECONDS,
      });
      return { id: stored.id, token, labels: stored.labels, maxUses: stored.maxUses, expiresAt: stored.expiresAt };
    },

    'tokens.list': async () => ({
      items: (await tokens.list()).map((t) => ({
        id: t.id,
        labels: t.labels,
        maxUses: t.maxUses,
        uses: t.uses,
        expiresAt: t.expiresAt,
        revoked: t.revokedAt !== null,
        createdAt: t.createdAt,
      })),
    }),

    'tokens.revoke': async ({ id }) => {
      if (!(await tokens.revoke(id))) throw ApiError.notFound('token', id);
      return { id, revoked: true };
    },

    'serviceaccounts.create': async ({ name, role }) => {
      const clash = await deviceClash(name, deps);
      if (clash) throw new ApiError('conflict', `service account "${name}" would clash with device "${clash}"`);
      // The insert is what decides a race between two creators of one name.
      const key = await accounts.create(name, role);
      if (key === undefined) throw new ApiError('conflict', `service account "${name}" already exists`);
      return { name, role, key };
    },

    'serviceaccounts.list': async () => ({
      items: (await accounts.list()).map((a) => ({ name: a.name, role: a.role, createdAt: a.createdAt })),
    }),

    'serviceaccounts.delete': async ({ name }) => {
      const account = await accounts.get(name);
      if (!account) throw ApiError.notFound('service account', name);
      if (account.role === 'admin' && (await accounts.admins()) === 1) {
        throw new ApiError('invalid_request', `service account "${name}" is the last admin`);
      }
      await accounts.delete(name);
      // Its connections go at once: the key no longer exists.
      deps.disconnect((clientId) => clientId === name || clientId.startsWith(`${name}.`));
      return { name, deleted: true };
    },

    'devices.revoke': async ({ id }) => {
      if (!(await deps.devices.get(id)) && !(await credentials.get(id))) throw ApiError.notFound('device', id);
      await credentials.revoke(id);
      const disconnected = deps.disconnect((clientId) => clientId === id) > 0;
      return { id, revoked: true, disconnected };
    },
  };
}

/**
 * A device whose id an account named `name` would own as a client id: the
 * name itself or `<name>.<suffix>` (accounts may connect under either).
 */
async function deviceClash(name: string, deps: Pick<AuthMethodDeps, 'devices' | 'credentials'>): Promise<string | undefined> {
  if ((await deps.devices.get(name)) || (await deps.credentials.get(name))) return name;
  return (await deps.devices.list()).find((d) => d.id.startsWith(`${name}.`))?.id;
}

/** The account that would own `deviceId` as a client id, if any. */
export async function accountClash(deviceId: string, accounts: Pick<AccountStore, 'get'>): Promise<string | undefined> {
  const dot = deviceId.indexOf('.');
  const prefix = dot < 0 ? deviceId : deviceId.slice(0, dot);
  return (await accounts.get(prefix)) ? prefix : undefined;
}
