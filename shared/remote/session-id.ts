/** Session ids: they name a session's topics, so they must be unguessable and topic-safe. */
import { randomBytes } from 'node:crypto';

export const SESSION_ID_PATTERN = '^[A-Za-z0-9_-]{22}$';
const sessionIdRe = new RegExp(SESSION_ID_PATTERN);

/** 128 random bits, base64url: a third party cannot guess a live session's topics. */
export function newSessionId(): string {
  return randomBytes(16).toString('base64url');
}

export function isSessionId(value: string): boolean {
  return sessionIdRe.test(value);
}
