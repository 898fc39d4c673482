/**
 * Registration tokens: what `flotilla agent register` exchanges for a device
 * id and secret. A token is `flt-reg-` + 24 random bytes (base64url); the
 * hub keeps its SHA-256 only (enough for a value that cannot be guessed, and
 * it can be looked up by it), with the labels registered devices get, how
 * often it may be used, until when, and whether it was revoked.
 */
import { randomBytes } from 'node:crypto';
import type { Labels } from '../../shared/index.js';
import { randomToken, sha256Hex } from './hashing.js';

export const TOKEN_PREFIX = 'flt-reg-';

export interface StoredToken {
  id: string;
  labels: Labels;
  maxUses: number;
  uses: number;
  expiresAt: string;
  revokedAt: string | null;
  createdAt: string;
}

/** Why a token cannot be used (undefined: it can). */
export type TokenRefusal = 'unknown' | 'revoked' | 'expired' | 'used up';

export interface TokenStore {
  /** Returns the stored token and its value (shown once). */
  create(options: { labels: Labels; maxUses: number; expiresInSeconds: number }): Promise<{ token: string; stored: StoredToken }>;
  get(id: string): Promise<StoredToken | undefined>;
  list(): Promise<StoredToken[]>;
  revoke(id: string): Promise<boolean>;
  /** The token a value names, if it may be used now (`consume` is what counts: it may be used up meanwhile). */
  check(token: string): Promise<{ ok: true; token: StoredToken } | { ok: false; reason: TokenRefusal }>;
  /** Counts one use; false if the token was used up meanwhile. */
  consume(id: string): Promise<boolean>;
  /** Gives back a use `consume` counted for a registration that then failed. */
  refund(id: string): Promise<void>;
}

/** A new token's id, value and the SHA-256 the store keeps of it. */
export function newToken(): { id: string; token: string; tokenHash: string } {
  const token = `${TOKEN_PREFIX}${randomToken(24)}`;
  return { id: randomBytes(6).toString('hex'), token, tokenHash: sha256Hex(token) };
}

/** Why `stored` cannot be used at `now`; undefined when it can. */
export function tokenRefusal(stored: StoredToken, now: Date): TokenRefusal | undefined {
  if (stored.revokedAt !== null) return 'revoked';
  if (Date.parse(stored.expiresAt) <= now.getTime()) return 'expired';
  if (stored.uses >= stored.maxUses) return 'used up';
  return undefined;
}

/** A row as both engines store it. */
export interface TokenRow {
  id: string;
  token_hash: string;
  labels: string;
  max_uses: number;
  uses: number;
  expires_at: string;
  revoked_at: string | null;
  created_at: string;
}

export function tokenFromRow(row: TokenRow): StoredToken {
  return {
    id: row.id,
    labels: JSON.parse(row.labels) as Labels,
    maxUses: row.max_uses,
    uses: row.uses,
    expiresAt: row.expires_at,
    revokedAt: row.revoked_at,
    createdAt: row.created_at,
  };
}
