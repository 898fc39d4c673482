/**
 * `GET /api/v1/whoami`: the name and role the caller's key stands for, so a
 * client (the web console at login) can check a key and offer only what its
 * role may do. Any account may ask, a viewer too; a device may not (it holds
 * no role), and a hub allowing anonymous clients answers `anonymous`, with
 * the role anonymous callers hold there: admin.
 */
import type { Identity, Role } from '../auth/identity.js';
import type { RawRoute } from './server.js';

export interface Whoami {
  name: string;
  role: Role;
}

export function whoami(caller: Identity): Whoami {
  if (caller.kind === 'account') return { name: caller.name, role: caller.role };
  // Devices never get here (the route needs a role); anonymous callers hold every role.
  return { name: 'anonymous', role: 'admin' };
}

export function whoamiRoute(): RawRoute {
  return {
    method: 'GET',
    pattern: /^\/api\/v1\/whoami$/,
    role: 'viewer',
    handle(_req, res, _match, _url, caller) {
      const text = `${JSON.stringify(whoami(caller))}\n`;
      res
        .writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' })
        .end(text);
    },
  };
}
