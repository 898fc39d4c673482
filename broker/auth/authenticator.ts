/**
 * Turns what a client presents into an Identity, for MQTT CONNECT and HTTP
 * bearer keys alike:
 *
 * - a verified client certificate whose CN names a registered, non-revoked
 *   device → that device (no password needed; a username, if given, must be
 *   the CN); a CN that names no registered device is ignored;
 * - no username → anonymous, only while the hub allows it;
 * - a `readOnlyUsers` name and password → a viewer (dashboards);
 * - a service account's name and API key → the account, with its role;
 * - a device id and the device's secret → the device, unless revoked.
 *
 * Anything else is refused with a reason for the log (never for the client,
 * which learns only "bad user name or password").
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { type AccountStore, accountOfKey, type StoredAccount } from './accounts.js';
import type { DeviceCredentialStore } from './device-credentials.js';
import { ANONYMOUS, type Identity } from './identity.js';
import { SecretVerifier } from './verifier.js';

export interface ReadOnlyUser {
  username: string;
  password: string;
}

export type LoginResult =
  | { ok: true; identity: Identity }
  /** `anonymous`: no credentials where some are required (MQTT return code 5, not 4). */
  | { ok: false; reason: string; anonymous?: true; busy?: true };

/**
 * Too many secret checks are waiting (a reconnect storm): not a wrong
 * password, so no failed-login delay; the client is told to come back
 * (MQTT return code 3, HTTP 503).
 */
const BUSY: LoginResult = { ok: false, reason: 'too many logins being checked; try again', busy: true };

export interface AuthenticatorDeps {
  accounts: Pick<AccountStore, 'get'>;
  credentials: Pick<DeviceCredentialStore, 'get'>;
  readOnlyUsers: readonly ReadOnlyUser[];
  allowAnonymous: boolean;
  verifier?: SecretVerifier;
}

export class Authenticator {
  private readonly verifier: SecretVerifier;

  constructor(private readonly deps: AuthenticatorDeps) {
    this.verifier = deps.verifier ?? new SecretVerifier();
  }

  get allowAnonymous(): boolean {
    return this.deps.allowAnonymous;
  }

  async login(username: string | undefined, password: Buffer | undefined, certCommonName?: string): Promise<LoginResult> {
    const byCertificate = certCommonName === undefined ? undefined : await this.byCertificate(certCommonName, username);
    if (byCertificate) return byCertificate;
    if (username === undefined) {
      return this.deps.allowAnonymous
        ? { ok: true, identity: ANONYMOUS }
        : { ok: false, reason: 'anonymous clients are not allowed', anonymous: true };
    }
    const secret = password?.toString('utf8') ?? '';
    const dashboard = this.deps.readOnlyUsers.find((u) => u.username === username);
    if (dashboard) {
      return equalSecrets(secret, dashboard.password)
        ? { ok: true, identity: { kind: 'account', name: username, role: 'viewer', dashboard: true } }
        : { ok: false, reason: 'wrong password' };
    }
    const account = await this.deps.accounts.get(username);
    if (account) {
      if (accountOfKey(secret) !== account.name) return { ok: false, reason: 'wrong API key' };
      return this.checkKey(account, secret);
    }
    const device = await this.deps.credentials.get(username);
    if (device) {
      if (device.revokedAt !== null) return { ok: false, reason: 'device revoked' };
      const verdict = await this.verifier.verify(`device:${device.deviceId}`, secret, device.secretHash);
      if (verdict === 'busy') return BUSY;
      if (!verdict) {
        return { ok: false, reason: 'wrong device secret' };
      }
      // Revoked while the hash was being checked: the revocation wins.
      if ((await this.deps.credentials.get(username))?.revokedAt !== null) return { ok: false, reason: 'device revoked' };
      return { ok: true, identity: { kind: 'device', deviceId: device.deviceId } };
    }
    return { ok: false, reason: 'unknown username' };
  }

  /** An HTTP `Authorization` header's bearer API key; undefined header → anonymous if allowed. */
  async bearer(header: string | undefined): Promise<LoginResult> {
    if (header === undefined) {
      return this.deps.allowAnonymous ? { ok: true, identity: ANONYMOUS } : { ok: false, reason: 'no bearer token', anonymous: true };
    }
    const match = /^Bearer +(\S+) *$/i.exec(header);
    if (!match) return { ok: false, reason: 'not a bearer token' };
    const key = match[1]!;
    const name = accountOfKey(key);
    const account = name === undefined ? undefined : await this.deps.accounts.get(name);
    if (!account) return { ok: false, reason: 'unknown account' };
    return this.checkKey(account, key);
  }

  private async checkKey(account: StoredAccount, key: string): Promise<LoginResult> {
    const verdict = await this.verifier.verify(`account:${account.name}`, key, account.keyHash);
    if (verdict === 'busy') return BUSY;
    if (!verdict) return { ok: false, reason: 'wrong API key' };
    // Deleted (or re-created) while the hash was being checked: the current row decides.
    const current = await this.deps.accounts.get(account.name);
    if (current?.keyHash !== account.keyHash) return { ok: false, reason: 'account deleted' };
    return { ok: true, identity: { kind: 'account', name: current.name, role: current.role } };
  }

  /** Undefined when the CN names no registered device: the certificate then says nothing, the password decides. */
  private async byCertificate(cn: string, username: string | undefined): Promise<LoginResult | undefined> {
    const device = await this.deps.credentials.get(cn);
    if (!device) return undefined;
    if (username !== undefined && username !== cn) return { ok: false, reason: 'username differs from the certificate CN' };
    if (device.revokedAt !== null) return { ok: false, reason: 'device revoked' };
    return { ok: true, identity: { kind: 'device', deviceId: device.deviceId } };
  }
}

/**
 * Compares as SHA-256 digests with `timingSafeEqual`, so neither the time
 * nor a length mismatch tells how much of a password was right.
 */
export function equalSecrets(given: string, expected: string): boolean {
  const digest = (value: string) => createHash('sha256').update(value, 'utf8').digest();
  return timingSafeEqual(digest(given), digest(expected));
}
