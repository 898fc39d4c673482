/**
 * API methods for who may connect: registration tokens, service accounts,
 * device revocation (all admin-only, permissions.ts). Registration itself is
 * an HTTP route of its own (register.ts): the token is its credential.
 */
import { type TSchema, Type } from '@sinclair/typebox';
import { DeviceId, Labels, Name } from '../../shared/index.js';
import { ApiError } from '../dispatcher/errors.js';
import { type Method, method } from '../dispatcher/method.js';
import type { Db } from '../store/db.js';
import type { DeviceStore } from '../store/devices.js';
import type { AccountStore } from './accounts.js';
import type { DeviceCredentialStore } from './device-credentials.js';
import { ROLES } from './identity.js';
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
const MAX_EXPIRES_SECONDS = 10 * 365 * 24 * 3600;

const ById = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) }, { additionalProperties: false });

export function authMethods(deps: AuthMethodDeps): Record<string, Method<TSchema>> {
  const { accounts, credentials, tokens } = deps;

  const methods = {
    'tokens.create': method(
      Type.Object(
        {
          labels: Type.Optional(Labels),
          maxUses: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000 })),
          expiresInSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_EXPIRES_SECONDS })),
        },
        { additionalProperties: false },
      ),
      ({ labels, maxUses, expiresInSeconds }) => {
        const { token, stored } = tokens.create({
          labels: labels ?? {},
          maxUses: maxUses ?? DEFAULT_TOKEN_MAX_USES,
          expiresInSeconds: expiresInSeconds ?? DEFAULT_TOKEN_EXPIRES_SECONDS,
        });
        return { id: stored.id, token, labels: stored.labels, maxUses: stored.maxUses, expiresAt: stored.expiresAt };
      },
    ),

    'tokens.list': method(Type.Object({}, { additionalProperties: false }), () => ({
      items: tokens.list().map((t) => ({
        id: t.id,
        labels: t.labels,
        maxUses: t.maxUses,
        uses: t.uses,
        expiresAt: t.expiresAt,
        revoked: t.revokedAt !== null,
        createdAt: t.createdAt,
      })),
    })),

    'tokens.revoke': method(ById, ({ id }) => {
      if (!tokens.revoke(id)) throw ApiError.notFound('token', id);
      return { id, revoked: true };
    }),

    'serviceaccounts.create': method(
      Type.Object({ name: Name, role: Type.Union(ROLES.map((r) => Type.Literal(r))) }, { additionalProperties: false }),
      ({ name, role }) => {
        const key = deps.db.transaction(() => {
          if (accounts.get(name)) throw new ApiError('conflict', `service account "${name}" already exists`);
          const clash = deviceClash(name, deps);
          if (clash) throw new ApiError('conflict', `service account "${name}" would clash with device "${clash}"`);
          return accounts.create(name, role);
        })();
        return { name, role, key };
      },
    ),

    'serviceaccounts.list': method(Type.Object({}, { additionalProperties: false }), () => ({
      items: accounts.list().map((a) => ({ name: a.name, role: a.role, createdAt: a.createdAt })),
    })),

    'serviceaccounts.delete': method(Type.Object({ name: Name }, { additionalProperties: false }), ({ name }) => {
      const account = accounts.get(name);
      if (!account) throw ApiError.notFound('service account', name);
      if (account.role === 'admin' && accounts.admins() === 1) {
        throw new ApiError('invalid_request', `service account "${name}" is the last admin`);
      }
      accounts.delete(name);
      // Its connections go at once: the key no longer exists.
      deps.disconnect((clientId) => clientId === name || clientId.startsWith(`${name}.`));
      return { name, deleted: true };
    }),

    'devices.revoke': method(Type.Object({ id: DeviceId }, { additionalProperties: false }), ({ id }) => {
      if (!deps.devices.get(id) && !credentials.get(id)) throw ApiError.notFound('device', id);
      credentials.revoke(id);
      const disconnected = deps.disconnect((clientId) => clientId === id) > 0;
      return { id, revoked: true, disconnected };
    }),
  };
  return methods as unknown as Record<string, Method<TSchema>>;
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
