/**
 * Signed desired state. The hub signs each desired document with its Ed25519
 * key; an agent that pinned the hub's public key runs only what verifies.
 *
 * What is signed: the canonical JSON (keys sorted at every level, see
 * canonical-json.ts) of the document without its `signature` field, as UTF-8.
 * Canonical, so the signature survives any re-serialisation that keeps the
 * values (key order, whitespace) — the agent persists and reloads documents.
 *
 *   signature: { alg: 'ed25519', value: base64 of the 64-byte signature }
 *
 * The signature covers `deviceId` and `revision`, so a document signed for
 * one device cannot be replayed to another, and an old one is recognised by
 * its revision (the agent keeps the newest it accepted).
 */
import { createPublicKey, type KeyObject, sign, verify } from 'node:crypto';
import { canonicalJson } from './canonical-json.js';
import type { DesiredState } from './schemas/messages.js';

export const DESIRED_SIGNATURE_ALG = 'ed25519';

/** Why a document did not verify; the words the agent's rejection event uses. */
export type SignatureProblem = 'unsigned' | 'bad signature';

/** The bytes the signature covers. */
export function signedBytes(desired: DesiredState): Buffer {
  const { signature: _ignored, ...unsigned } = desired;
  return Buffer.from(canonicalJson(unsigned), 'utf8');
}

/** A copy of `desired` carrying a fresh signature (any old one is replaced). Ed25519 is deterministic: the same document and key give the same signature. */
export function signDesired(desired: DesiredState, privateKey: KeyObject): DesiredState {
  const value = sign(null, signedBytes(desired), privateKey).toString('base64');
  return { ...desired, signature: { alg: DESIRED_SIGNATURE_ALG, value } };
}

/** Checks `desired` against the hub's public key; undefined when it verifies. */
export function verifyDesired(desired: DesiredState, publicKey: KeyObject): SignatureProblem | undefined {
  const signature = desired.signature;
  if (!signature) return 'unsigned';
  if (signature.alg !== DESIRED_SIGNATURE_ALG) return 'bad signature';
  const bytes = Buffer.from(signature.value, 'base64');
  // Buffer.from ignores what is not base64; a value that does not round-trip was not written by signDesired.
  if (bytes.length !== 64 || bytes.toString('base64') !== signature.value) return 'bad signature';
  try {
    return verify(null, signedBytes(desired), publicKey, bytes) ? undefined : 'bad signature';
  } catch {
    return 'bad signature';
  }
}

/** Parses a pinned hub key (SPKI PEM); throws a message fit for a configuration error. */
export function parseHubKey(pem: string): KeyObject {
  // createPublicKey would derive the public half from a private key: a device must never hold that.
  if (/PRIVATE KEY/.test(pem)) throw new Error("the hub key is a private key; pin the hub's public key (GET /api/v1/hub/key)");
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch (err) {
    throw new Error(`the hub key is not a PEM public key: ${(err as Error).message}`);
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new Error(`the hub key is a ${key.asymmetricKeyType ?? 'unknown'} key; the hub signs with Ed25519`);
  }
  return key;
}
