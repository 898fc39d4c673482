/**
 * Service accounts: a name (a DNS label), a role, and the scrypt hash of the
 * account's API key. The key itself is shown once, at creation, and is
 * `<name>.<43 characters>`: the name in front tells the hub which hash to
 * check without a scan, and cannot hold a dot, so the split is unambiguous.
 */
import { hashSecretSync, randomToken } from './hashing.js';
import type { Role } from './identity.js';

export interface StoredAccount {
  name: string;
  role: Role;
  keyHash: string;
  createdAt: string;
}

export interface AccountStore {
  get(name: string): Promise<StoredAccount | undefined>;
  list(): Promise<StoredAccount[]>;
  admins(): Promise<number>;
  /**
   * Creates the account and returns its API key (the only time it exists
   * outside the caller); undefined, and nothing written, when the name is taken.
   */
  create(name: string, role: Role): Promise<string | undefined>;
  /**
   * Deletes the account; with `unlessRole`, only while its role is another one, in the same
   * statement (a replica must not delete an account another replica has just made that role).
   */
  delete(name: string, options?: { unlessRole?: Role }): Promise<boolean>;
}

/** A new account's API key and the hash the store keeps of it. */
export function newAccountKey(name: string): { key: string; keyHash: string } {
  const key = `${name}.${randomToken(32)}`;
  return { key, keyHash: hashSecretSync(key) };
}

/** The account name an API key claims: everything before its first dot. */
export function accountOfKey(key: string): string | undefined {
  const dot = key.indexOf('.');
  return dot > 0 ? key.slice(0, dot) : undefined;
}
