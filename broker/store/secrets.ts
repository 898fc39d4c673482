/**
 * Named secret values that specs reference (`env[].fromSecret`,
 * `auth.fromSecret`, `secrets: [{name}]`): registry passwords, tokens, keys.
 *
 * Values are bytes (a key file need not be UTF-8) and are stored sealed
 * (secret-cipher.ts, the secret's name as associated data): the `value`
 * column holds a BLOB, never the plain value. Rows written as TEXT by an older
 * hub are sealed once at start (seal-at-rest.ts) before this store reads them.
 */

export interface SecretStore {
  /** The plain value; throws SealedDataError if it does not open (wrong key, altered row). */
  get(name: string): Promise<Buffer | undefined>;
  /** Names only: values never leave the hub except inside a device's desired state. */
  list(): Promise<{ name: string; updatedAt: string }[]>;
  set(name: string, value: Buffer): Promise<void>;
  delete(name: string): Promise<boolean>;
}
