/**
 * WebSocket subprotocols of the session endpoint (docs/remote-protocol.md §5).
 * A browser's WebSocket cannot send `Authorization`, so the web console
 * offers two subprotocols: `flotilla.session`, which the hub selects, and
 * `flotilla.bearer.<the API key, base64url without padding>`, which carries
 * the key. The hub reads that key as if it came in an `Authorization:
 * Bearer` header: the same check, the same growing delay after a wrong one,
 * the same refusal. A request with the header is judged by the header alone.
 */
import type { IncomingMessage } from 'node:http';

export const SESSION_PROTOCOL = 'flotilla.session';
const BEARER_PREFIX = 'flotilla.bearer.';

/** The protocol the hub selects among those the client offers: `flotilla.session`, or none (a client offering none is fine). */
export function selectSessionProtocol(offered: ReadonlySet<string>): string | false {
  return offered.has(SESSION_PROTOCOL) ? SESSION_PROTOCOL : false;
}

/** The subprotocol that carries `key`. */
export function bearerProtocol(key: string): string {
  return `${BEARER_PREFIX}${Buffer.from(key, 'utf8').toString('base64url')}`;
}

/** The `Authorization` value a session upgrade stands for: its header, else the key a bearer subprotocol carries. */
export function sessionAuthorization(req: IncomingMessage): string | undefined {
  if (req.headers.authorization !== undefined) return req.headers.authorization;
  const offered = (req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
  const carried = offered.find((p) => p.startsWith(BEARER_PREFIX));
  if (carried === undefined) return undefined;
  // A malformed value decodes to a key that matches no account, and is refused as one.
  return `Bearer ${Buffer.from(carried.slice(BEARER_PREFIX.length), 'base64url').toString('utf8')}`;
}
