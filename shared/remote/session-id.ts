/**
 * Session ids: they name a session's topics, so they must be unguessable and
 * topic-safe. Web Crypto rather than node:crypto, so the web console's
 * terminal can load the session request types without Node's modules.
 */

export const SESSION_ID_PATTERN = '^[A-Za-z0-9_-]{22}$';
const sessionIdRe = new RegExp(SESSION_ID_PATTERN);

/** 128 random bits, base64url: a third party cannot guess a live session's topics. */
export function newSessionId(): string {
  const bytes = globalThis.crypto.getRandomValues(new Uint8Array(16));
  return btoa(String.fromCharCode(...bytes))
    .replace(/\+/g, '-')
    .replace(/\//g, '_')
    .replace(/=+$/, '');
}

export function isSessionId(value: string): boolean {
  return sessionIdRe.test(value);
}
