/**
 * Why `flotilla migrate` stopped, as typed errors. Each message says what is wrong and what to
 * do; none repeats a database password or a key.
 *
 * - `MigrateRefused`: a check before the copy failed (the data dir, the hub, the key, the target);
 *   nothing was written to the target.
 * - `MigrateMismatch`: the copy did not read back as the source holds it; the transaction was
 *   rolled back, so the target is as it was before.
 */

export type MigrateRefusal =
  /** The data dir has no hub.db. */
  | 'no_hub_db'
  /** A hub has hub.db open. */
  | 'hub_running'
  /** hub.db's schema version is not this Flotilla's. */
  | 'schema_version'
  /** hub.db holds a table the copy does not know. */
  | 'unknown_table'
  /** hub.db holds plain-text secret values or desired documents from an older hub. */
  | 'plain_text'
  /** No secrets key where the hub would look for it. */
  | 'no_secrets_key'
  /** The secrets key does not open the hub's sealed data. */
  | 'wrong_secrets_key'
  /** The data dir has no signing key. */
  | 'no_signing_key'
  /** The target database already holds control data. */
  | 'target_not_empty'
  /** Another session holds the target's control tables. */
  | 'target_busy'
  /** The target's tables do not have the columns hub.db's have. */
  | 'target_schema';

export class MigrateRefused extends Error {
  readonly code = 'migrate_refused';

  constructor(
    readonly problem: MigrateRefusal,
    message: string,
    /** What the operator can do about it, one line each. */
    readonly hints: readonly string[] = [],
  ) {
    super(message);
    this.name = 'MigrateRefused';
  }
}

export class MigrateMismatch extends Error {
  readonly code = 'migrate_mismatch';

  constructor(
    readonly table: string,
    /** The row's key as `column=value` pairs, or undefined for a count. */
    readonly row: string | undefined,
    message: string,
  ) {
    super(message);
    this.name = 'MigrateMismatch';
  }
}

export function isMigrateRefused(err: unknown): err is MigrateRefused {
  return err instanceof MigrateRefused;
}
