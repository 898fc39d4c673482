/**
 * `POST /api/v1/register`: a device exchanges a registration token for its
 * id and secret. No bearer key: the token is the credential, so a used-up,
 * expired, revoked or unknown token is 401 `unauthorized`.
 *
 * Body `{token, deviceId?, labels?}` → `{deviceId, secret, hubKey, mqtt: {port, tlsPort?, url?}}`:
 * `url` is the MQTT URL the hub announces (`--agent-mqtt-url`, a load balancer's in front of
 * replicas), which the agent is to connect to instead of the registering host and `port`.
 * The device row is created (it shows in `flotilla get devices` at once) with
 * the requested labels, overridden by the token's: the admin who made the
 * token decides, not the device. The secret is returned once; the hub keeps
 * its scrypt hash. An id that is taken (a registered or revoked device, or an
 * account's client id) is 409 `conflict`: a token must not hand over an
 * existing device.
 */

import { randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { Type } from '@sinclair/typebox';
import type { Logger } from 'pino';
import { DeviceId, Labels, validate } from '../../shared/index.js';
import { ApiError } from '../dispatcher/errors.js';
import { type RawRoute, readBody } from '../http/server.js';
import type { DeviceStore } from '../store/devices.js';
import type { AccountStore } from './accounts.js';
import type { DeviceCredentialStore } from './device-credentials.js';
import { hashSecret, randomToken } from './hashing.js';
import { type LoginDelay, sleep } from './login-delay.js';
import { accountClash } from './methods.js';
import type { TokenStore } from './tokens.js';

const RegisterRequest = Type.Object(
  {
    token: Type.String({ minLength: 1, maxLength: 256 }),
    deviceId: Type.Optional(DeviceId),
    labels: Type.Optional(Labels),
  },
  { additionalProperties: false },
);

export interface RegisterDeps {
  tokens: TokenStore;
  credentials: DeviceCredentialStore;
  accounts: Pick<AccountStore, 'get'>;
  devices: Pick<DeviceStore, 'ensure' | 'get' | 'setOperatorLabels'>;
  /** The hub's signing public key (SPKI PEM), which the agent pins. */
  hubKey: () => string;
  mqttPorts: () => { port: number; tlsPort?: number; url?: string };
  loginDelay: LoginDelay;
  logger: Logger;
  /** The new device's labels may change what it must run. */
  desiredMayHaveChanged: () => void;
}

/** A registration request is a token, an id and a few labels: anything bigger from an unauthenticated caller is refused early. */
const MAX_BODY_BYTES = 16 * 1024;

export function registerRoute(deps: RegisterDeps): RawRoute {
  const log = deps.logger.child({ component: 'register' });
  return {
    method: 'POST',
    pattern: /^\/api\/v1\/register$/,
    public: true,
    async handle(req, res) {
      const body = await readBody(req, undefined, MAX_BODY_BYTES);
      const checked = validate(RegisterRequest, body);
      if (!checked.ok) throw ApiError.invalid('invalid_request', 'registration request', checked.issues);
      const { token, labels = {} } = checked.value;
      const address = req.socket.remoteAddress ?? 'unknown';
      const refuse = async (reason: string) => {
        const wait = deps.loginDelay.fail(address);
        log.warn({ address, reason, delayMs: wait }, 'registration refused');
        await sleep(wait);
        throw new ApiError('unauthorized', `registration token refused: ${reason}`);
      };
      // Checked before the (slow) hash; consuming a use is what counts.
      const first = await deps.tokens.check(token);
      if (!first.ok) return refuse(first.reason);
      const deviceId = checked.value.deviceId ?? `dev-${randomBytes(5).toString('hex')}`;
      const secret = randomToken(32);
      const secretHash = await hashSecret(secret);
      await refuseTakenId(deviceId, deps);
      const current = await deps.tokens.check(token);
      if (!current.ok) return refuse(current.reason);
      const tokenId = current.token.id;
      if (!(await deps.tokens.consume(tokenId))) return refuse('used up');
      // The id's row is the lock: of two registrations racing for one id, one inserts it, the other gets its use back.
      if (!(await deps.credentials.create(deviceId, secretHash))) {
        await deps.tokens.refund(tokenId);
        await refuseTakenId(deviceId, deps);
        throw new ApiError('conflict', `device "${deviceId}" is already registered`);
      }
      await deps.devices.ensure(deviceId);
      const existing = (await deps.devices.get(deviceId))?.operatorLabels ?? {};
      await deps.devices.setOperatorLabels(deviceId, { ...existing, ...labels, ...current.token.labels });
      deps.desiredMayHaveChanged();
      log.info({ deviceId, tokenId, address }, 'device registered with a token');
      const { port, tlsPort, url } = deps.mqttPorts();
      send(res, 200, {
        deviceId,
        secret,
        hubKey: deps.hubKey(),
        mqtt: { port, ...(tlsPort !== undefined ? { tlsPort } : {}), ...(url !== undefined ? { url } : {}) },
      });
    },
  };
}

/** Refuses an id a registered or revoked device, or a service account, holds. */
async function refuseTakenId(deviceId: string, deps: Pick<RegisterDeps, 'credentials' | 'accounts'>): Promise<void> {
  const taken = await deps.credentials.get(deviceId);
  // A revoked id stays claimed: a new device under it would take over the revoked one's row (labels, desired state).
  if (taken?.revokedAt) {
    throw new ApiError(
      'conflict',
      `device "${deviceId}" was revoked (${taken.revokedAt}) and its id cannot be reused: choose another --device-id`,
    );
  }
  if (taken) throw new ApiError('conflict', `device "${deviceId}" is already registered`);
  const account = await accountClash(deviceId, deps.accounts);
  if (account) throw new ApiError('conflict', `device id "${deviceId}" clashes with service account "${account}"`);
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = `${JSON.stringify(body)}\n`;
  // no-store: the answer holds the device's secret.
  res
    .writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' })
    .end(text);
}
