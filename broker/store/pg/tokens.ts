/** The PostgreSQL engine of TokenStore. A use is counted by one conditional UPDATE, so replicas never exceed maxUses between them. */
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
import type { PgDatabase } from './database.js';

export class PgTokenStore implements TokenStore {
  constructor(
    private readonly db: PgDatabase,
    private readonly now: () => Date = () => new Date(),
  ) {}

  async create(options: { labels: Labels; maxUses: number; expiresInSeconds: number }): Promise<{ token: string; stored: StoredToken }> {
    const { id, token, tokenHash } = newToken();
    const now = this.now();
    const expiresAt = new Date(now.getTime() + options.expiresInSeconds * 1000).toISOString();
    const [row] = await this.db.query<TokenRow>(
      `INSERT INTO registration_tokens (id, token_hash, labels, max_uses, expires_at, created_at) VALUES ($1, $2, $3, $4, $5, $6)
       RETURNING *`,
      [id, tokenHash, JSON.stringify(options.labels), options.maxUses, expiresAt, now.toISOString()],
    );
    return { token, stored: tokenFromRow(row!) };
  }

  async get(id: string): Promise<StoredToken | undefined> {
    const [row] = await this.db.query<TokenRow>('SELECT * FROM registration_tokens WHERE id = $1', [id]);
    return row && tokenFromRow(row);
  }

  async list(): Promise<StoredToken[]> {
    return (await this.db.query<TokenRow>('SELECT * FROM registration_tokens ORDER BY created_at, id')).map(tokenFromRow);
  }

  async revoke(id: string): Promise<boolean> {
    const changed = await this.db.query('UPDATE registration_tokens SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2 RETURNING id', [
      this.now().toISOString(),
      id,
    ]);
    return changed.length > 0;
  }

  async check(token: string): Promise<{ ok: true; token: StoredToken } | { ok: false; reason: TokenRefusal }> {
    const [row] = await this.db.query<TokenRow>('SELECT * FROM registration_tokens WHERE token_hash = $1', [sha256Hex(token)]);
    if (!row) return { ok: false, reason: 'unknown' };
    const stored = tokenFromRow(row);
    const reason = tokenRefusal(stored, this.now());
    return reason ? { ok: false, reason } : { ok: true, token: stored };
  }

  async consume(id: string): Promise<boolean> {
    const used = await this.db.query('UPDATE registration_tokens SET uses = uses + 1 WHERE id = $1 AND uses < max_uses RETURNING id', [id]);
    return used.length > 0;
  }

  async refund(id: string): Promise<void> {
    await this.db.query('UPDATE registration_tokens SET uses = uses - 1 WHERE id = $1 AND uses > 0', [id]);
  }
}
