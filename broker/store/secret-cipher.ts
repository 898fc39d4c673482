/**
 * Seals what must not lie in plain bytes on the hub's disk: secret values and
 * the desired documents that carry them. AES-256-GCM from node:crypto.
 *
 * Layout of a sealed value: `version (1 byte) | IV (12) | ciphertext | tag (16)`.
 *
 * Invariants:
 * - A fresh random 12-byte IV for every seal: GCM with a repeated (key, IV)
 *   pair leaks the XOR of two plaintexts and the authentication key. At 2^32
 *   seals per key the random-IV collision risk stays under NIST's 2^-32 bound;
 *   a hub seals once per secret write and per desired document.
 * - The associated data binds a value to the row it belongs to (a secret's
 *   name, a device's desired document), so a sealed value copied into another
 *   row does not open there.
 * - `open` never returns garbage: a wrong key, a tampered byte or a different
 *   row all fail the tag check and throw SealedDataError.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

export const SECRETS_KEY_BYTES = 32;
const VERSION = 1;
const IV_BYTES = 12;
const TAG_BYTES = 16;

/** Opening failed: wrong key, tampered bytes, or a value moved to another row. */
export class SealedDataError extends Error {
  readonly code = 'sealed_data';
}

export class SecretCipher {
  private readonly key: Buffer;

  constructor(key: Buffer) {
    if (key.length !== SECRETS_KEY_BYTES) throw new Error(`a secrets key is ${SECRETS_KEY_BYTES} bytes, got ${key.length}`);
    // A copy: the caller's buffer may be reused or zeroed.
    this.key = Buffer.from(key);
  }

  seal(plain: Buffer, associatedData: string): Buffer {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(Buffer.from(associatedData, 'utf8'));
    const body = Buffer.concat([cipher.update(plain), cipher.final()]);
    return Buffer.concat([Buffer.from([VERSION]), iv, body, cipher.getAuthTag()]);
  }

  open(sealed: Buffer, associatedData: string): Buffer {
    if (sealed.length < 1 + IV_BYTES + TAG_BYTES || sealed[0] !== VERSION) {
      throw new SealedDataError(
        `sealed value for "${associatedData}" is malformed (version ${sealed[0] ?? 'none'}, ${sealed.length} bytes)`,
      );
    }
    const iv = sealed.subarray(1, 1 + IV_BYTES);
    const tag = sealed.subarray(sealed.length - TAG_BYTES);
    const body = sealed.subarray(1 + IV_BYTES, sealed.length - TAG_BYTES);
    const decipher = createDecipheriv('aes-256-gcm', this.key, iv, { authTagLength: TAG_BYTES });
    decipher.setAAD(Buffer.from(associatedData, 'utf8'));
    decipher.setAuthTag(tag);
    try {
      return Buffer.concat([decipher.update(body), decipher.final()]);
    } catch {
      throw new SealedDataError(`cannot open the sealed value for "${associatedData}": wrong secrets key, or the data was altered`);
    }
  }

  sealText(text: string, associatedData: string): Buffer {
    return this.seal(Buffer.from(text, 'utf8'), associatedData);
  }

  openText(sealed: Buffer, associatedData: string): string {
    return this.open(sealed, associatedData).toString('utf8');
  }
}

/** Associated data of a device's stored desired document (secret names are DNS labels, so no colon: no clash). */
export function desiredDocAad(deviceId: string): string {
  return `device:${deviceId}:desired`;
}

/** Associated data of the content hash of that document. */
export function desiredHashAad(deviceId: string): string {
  return `device:${deviceId}:desired-hash`;
}
