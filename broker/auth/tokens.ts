/**
 * Registration tokens: what `flotilla agent register` exchanges for a device
 * id and secret. A token is `flt-reg-` + 24 random bytes (base64url); the
 * hub keeps its SHA-256 only (enough for a value that cannot be guessed, and
 * it can be looked up by it), with the labels registered devices get, how
 * often it may be used, until when, and whether it was revoked.
 */
import { randomBytes } from 'node:crypto';
import type { Labels } from '../../shared/index.js';
import type { Db } from '../store/db.js';
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

interface TokenRow {
  id: string;
  token_hash: string;
  labels: string;
  max_uses: number;
  uses: number;
  expires_at: string;
  revoked_at: string | null;
  created_at: string;
}

/** Why a token cannot be used (undefined: it can). */
export type TokenRefusal = 'unknown' | 'revoked' | 'expired' | 'used up';

export class TokenStore {
  private readonly insert;
  private readonly selectAll;
  private readonly selectOne;
  private readonly selectByHash;
  private readonly revokeOne;
  private readonly use;

  constructor(
    db: Db,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.insert = db.prepare(
      'INSERT INTO registration_tokens (id, token_hash, labels, max_uses, expires_at, created_at) VALUES (?, ?, ?, ?, ?, ?)',
    );
    this.selectAll = db.prepare<[], TokenRow>('SELECT * FROM registration_tokens ORDER BY created_at, id');
    this.selectOne = db.prepare<[string], TokenRow>('SELECT * FROM registration_tokens WHERE id = ?');
    this.selectByHash = db.prepare<[string], TokenRow>('SELECT * FROM registration_tokens WHERE token_hash = ?');
    this.revokeOne = db.prepare('UPDATE registration_tokens SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?');
    this.use = db.prepare('UPDATE registration_tokens SET uses = uses + 1 WHERE id = ? AND uses < max_uses');
  }

  /** Returns the stored token and its value (shown once). */
  create(options: { labels: Labels; maxUses: number; expiresInSeconds: number }): { token: string; stored: StoredToken } {
    const id = randomBytes(6).toString('hex');
    const token = `${TOKEN_PREFIX}${randomToken(24)}`;
    const now = this.now();
    const expiresAt = new Date(now.getTime() + options.expiresInSeconds * 1000).toISOString();
    this.insert.run(id, sha256Hex(token), JSON.stringify(options.labels), options.maxUses, expiresAt, now.toISOString());
    return { token, stored: this.get(id)! };
  }

  get(id: string): StoredToken | undefined {
    const row = this.selectOne.get(id);
    return row && toToken(row);
  }

  list(): StoredToken[] {
    return this.selectAll.all().map(toToken);
  }

  revoke(id: string): boolean {
    return this.revokeOne.run(this.now().toISOString(), id).changes > 0;
  }

  /** The token a value names, if it may be used now. Call inside the transaction that then calls `consume`. */
  check(token: string): { ok: true; token: StoredToken } | { ok: false; reason: TokenRefusal } {
    const row = this.selectByHash.get(sha256Hex(token));
    if (!row) return { ok: false, reason: 'unknown' };
    const stored = toToken(row);
    if (stored.revokedAt !== null) return { ok: false, reason: 'revoked' };
    if (Date.parse(stored.expiresAt) <= this.now().getTime()) return { ok: false, reason: 'expired' };
    if (stored.uses >= stored.maxUses) return { ok: false, reason: 'used up' };
    return { ok: true, token: stored };
  }

  /** Counts one use; false if the token was used up meanwhile. */
  consume(id: string): boolean {
    return this.use.run(id).changes > 0;
  }
}

function toToken(row: TokenRow): StoredToken {
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
