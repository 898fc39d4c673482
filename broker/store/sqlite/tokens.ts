/** The SQLite engine of TokenStore (hub.db). */
import type { Labels } from '../../../shared/index.js';
import { sha256Hex } from '../../auth/hashing.js';
import {
  newToken,
  type StoredToken,
  type TokenRefusal,
  type TokenRow,
  type TokenStore,
  tokenFromRow,
  tokenRefusal,
} from '../../auth/tokens.js';
import type { Db } from './db.js';

export class SqliteTokenStore implements TokenStore {
  private readonly insert;
  private readonly selectAll;
  private readonly selectOne;
  private readonly selectByHash;
  private readonly revokeOne;
  private readonly use;
  private readonly giveBack;

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
    this.giveBack = db.prepare('UPDATE registration_tokens SET uses = uses - 1 WHERE id = ? AND uses > 0');
  }

  async create(options: { labels: Labels; maxUses: number; expiresInSeconds: number }): Promise<{ token: string; stored: StoredToken }> {
    const { id, token, tokenHash } = newToken();
    const now = this.now();
    const expiresAt = new Date(now.getTime() + options.expiresInSeconds * 1000).toISOString();
    this.insert.run(id, tokenHash, JSON.stringify(options.labels), options.maxUses, expiresAt, now.toISOString());
    return { token, stored: tokenFromRow(this.selectOne.get(id)!) };
  }

  async get(id: string): Promise<StoredToken | undefined> {
    const row = this.selectOne.get(id);
    return row && tokenFromRow(row);
  }

  async list(): Promise<StoredToken[]> {
    return this.selectAll.all().map(tokenFromRow);
  }

  async revoke(id: string): Promise<boolean> {
    return this.revokeOne.run(this.now().toISOString(), id).changes > 0;
  }

  async check(token: string): Promise<{ ok: true; token: StoredToken } | { ok: false; reason: TokenRefusal }> {
    const row = this.selectByHash.get(sha256Hex(token));
    if (!row) return { ok: false, reason: 'unknown' };
    const stored = tokenFromRow(row);
    const reason = tokenRefusal(stored, this.now());
    return reason ? { ok: false, reason } : { ok: true, token: stored };
  }

  async consume(id: string): Promise<boolean> {
    return this.use.run(id).changes > 0;
  }

  async refund(id: string): Promise<void> {
    this.giveBack.run(id);
  }
}
