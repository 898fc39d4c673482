/**
 * HTTP API credentials: `Authorization: Bearer <API key>`, the same key a
 * service account uses as its MQTT password. A missing or wrong key is 401
 * (with `WWW-Authenticate: Bearer`, broker/http/server.ts), after the same
 * growing delay per address as MQTT logins; a known caller whose role is too
 * low for the method is 403 `forbidden`. Without a header the caller is
 * anonymous, which only a hub allowing anonymous clients accepts.
 */
import type { IncomingMessage } from 'node:http';
import type { Logger } from 'pino';
import { ApiError } from '../dispatcher/errors.js';
import type { Authenticator } from './authenticator.js';
import { describeIdentity, hasRole, type Identity, type Role } from './identity.js';
import { type LoginDelay, sleep } from './login-delay.js';
import { requiredRole } from './permissions.js';

export interface HttpAuth {
  /**
   * The caller's identity; throws ApiError `unauthorized`. `authorization` is
   * the header's value unless given (a session WebSocket's key may come as a
   * subprotocol, broker/remote/session-protocols.ts).
   */
  identify(req: IncomingMessage, authorization?: string): Promise<Identity>;
}

export function httpAuth(authenticator: Authenticator, loginDelay: LoginDelay, logger: Logger): HttpAuth {
  const log = logger.child({ component: 'http-auth' });
  return {
    async identify(req, authorization = req.headers.authorization) {
      const result = await authenticator.bearer(authorization);
      if (result.ok) return result.identity;
      const address = req.socket.remoteAddress ?? 'unknown';
      if (result.anonymous) throw new ApiError('unauthorized', 'this hub requires an API key: Authorization: Bearer <key>');
      if (result.busy) throw new ApiError('unavailable', result.reason);
      const wait = loginDelay.fail(address);
      log.warn({ address, reason: result.reason, delayMs: wait, method: req.method, url: req.url }, 'HTTP credentials refused');
      await sleep(wait);
      throw new ApiError('unauthorized', 'invalid API key');
    },
  };
}

/** Throws 403 unless `identity` holds `role`. */
export function requireRole(identity: Identity, role: Role, what: string): void {
  if (hasRole(identity, role)) return;
  const who = describeIdentity(identity);
  throw new ApiError('forbidden', `${what} needs role ${role}${who.role ? `; ${who.account ?? who.deviceId} is ${who.role}` : ''}`);
}

export function requireCall(identity: Identity, method: string): void {
  requireRole(identity, requiredRole(method), `method "${method}"`);
}
