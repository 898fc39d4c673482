/**
 * Where the hub's secrets key comes from, in this order:
 *
 * 1. `FLOTILLA_SECRETS_KEY`: base64 of 32 bytes (`openssl rand -base64 32`),
 *    for deployments that inject keys from a secret manager and keep none on disk;
 * 2. the key file (`--secrets-key-file`, hub config `secretsKeyFile`; default
 *    `<dataDir>/secrets.key`), holding the same base64 text; created with 32
 *    random bytes on first start.
 *
 * The key file is created with mode 0600 in the `open` call itself, never
 * written first and chmod-ed after, and linked into place whole
 * (private-file.ts): there is no moment at which another user could read it,
 * nor one at which its name holds half a key. Keeping it beside hub.db protects against a leaked
 * database file or backup of it alone; keep it elsewhere (or in the env var)
 * to protect against a leaked data directory.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Logger } from 'pino';
import { writePrivateFile } from '../../shared/private-file.js';
import { SECRETS_KEY_BYTES, SecretCipher } from './secret-cipher.js';

export const SECRETS_KEY_ENV = 'FLOTILLA_SECRETS_KEY';

export interface SecretsKey {
  key: Buffer;
  /** Where it came from, for messages: `FLOTILLA_SECRETS_KEY` or the file's path. Never the key. */
  source: string;
  /** The key file was made just now (first start, or the old one went missing). */
  created: boolean;
  /** The key file can be read by other users than its owner (mode & 077). */
  looseMode?: string;
}

export interface SecretsKeyOptions {
  /** The env var's value, if set. */
  envValue?: string | undefined;
  /** The configured key file; default `<dataDir>/secrets.key`. */
  keyFile?: string | undefined;
  dataDir: string;
}

export function loadSecretsKey(options: SecretsKeyOptions): SecretsKey {
  if (options.envValue !== undefined && options.envValue.trim() !== '') {
    return { key: decodeKey(options.envValue, SECRETS_KEY_ENV), source: SECRETS_KEY_ENV, created: false };
  }
  const file = options.keyFile ?? join(options.dataDir, 'secrets.key');
  const created = createKeyFile(file);
  const key = decodeKey(readFileSync(file, 'utf8'), `secrets key file ${file}`);
  const mode = statSync(file).mode & 0o777;
  return { key, source: file, created, ...((mode & 0o077) !== 0 ? { looseMode: mode.toString(8).padStart(4, '0') } : {}) };
}

/** Writes a fresh key unless the file exists; true if it wrote one. */
function createKeyFile(file: string): boolean {
  mkdirSync(dirname(file), { recursive: true });
  try {
    return writePrivateFile(file, `${randomBytes(SECRETS_KEY_BYTES).toString('base64')}\n`);
  } catch (err) {
    throw new Error(`cannot create the secrets key file ${file}: ${(err as Error).message}`);
  }
}

function decodeKey(text: string, what: string): Buffer {
  const trimmed = text.trim();
  const key = Buffer.from(trimmed, 'base64');
  // Buffer.from ignores characters outside the alphabet; a round trip catches a pasted hex key or a typo.
  const canonical = key.toString('base64').replace(/=+$/, '');
  if (key.length !== SECRETS_KEY_BYTES || canonical !== trimmed.replace(/=+$/, '')) {
    throw new Error(`${what} must hold the base64 of ${SECRETS_KEY_BYTES} bytes (make one with: openssl rand -base64 32)`);
  }
  return key;
}

export class WrongSecretsKeyError extends Error {
  readonly code = 'wrong_secrets_key';
}

export interface SecretsAtRestOptions {
  dataDir: string;
  keyFile?: string | undefined;
  /** `FLOTILLA_SECRETS_KEY`'s value, if set. */
  envValue?: string | undefined;
  logger: Pick<Logger, 'info' | 'warn'>;
}

/**
 * Finds the secrets key (logging where, and a new or loose key file) and
 * gives its cipher, with `wrongKey` to turn a WrongSecretsKeyError into one
 * that says where the key came from; any other error passes through.
 */
export function openSecretsKey(options: SecretsAtRestOptions): {
  cipher: SecretCipher;
  wrongKey: (err: unknown) => unknown;
  log: { component: string; keySource: string };
} {
  const found = loadSecretsKey({ dataDir: options.dataDir, keyFile: options.keyFile, envValue: options.envValue });
  const log = { component: 'secrets', keySource: found.source };
  if (found.created) options.logger.info(log, 'created a new secrets key file (mode 0600); back it up: sealed secrets are lost without it');
  if (found.looseMode)
    options.logger.warn({ ...log, mode: found.looseMode }, 'the secrets key file can be read by other users: chmod 600 it');
  const wrongKey = (err: unknown) => {
    if (!(err instanceof WrongSecretsKeyError)) return err;
    const hint = found.created
      ? ` (the key file ${found.source} was just created: the one the data was sealed with is missing)`
      : ` (key from ${found.source}; restore the original key: without it the sealed secrets cannot be recovered)`;
    return new WrongSecretsKeyError(`${err.message}${hint}`);
  };
  return { cipher: new SecretCipher(found.key), wrongKey, log };
}
