/**
 * `GET /api/v1/devices/:id/sessions` with `Upgrade: websocket`, on the HTTP
 * port and the HTTPS port (an `upgrade` listener on each server). The upgrade
 * is always completed for that path, so every refusal, even `unauthorized`,
 * reaches the client as a SessionFailed message and a close code it can act
 * on; any other path is answered 404 and closed.
 */
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { selectSessionProtocol } from './session-protocols.js';
import { type SessionSocketDeps, serveSessionSocket } from './session-socket.js';

const SESSIONS_PATH = /^\/api\/v1\/devices\/([^/]+)\/sessions$/;
/**
 * The first message is a SessionRequest (an exec's command may be 256
 * arguments of 4 KiB); frames after it are at most a header and 32 KiB.
 */
const MAX_MESSAGE_BYTES = 1536 * 1024;
/** How long a closing hub waits for clients to take their close frames. */
const CLOSE_GRACE_MS = 500;

export interface SessionEndpoint {
  /** The `upgrade` listener for the hub's HTTP and HTTPS servers. */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  /** Ends every session (the device is told) and closes every socket. */
  close(): Promise<void>;
}

export function sessionEndpoint(deps: SessionSocketDeps): SessionEndpoint {
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: MAX_MESSAGE_BYTES,
    perMessageDeflate: false,
    handleProtocols: selectSessionProtocol,
  });
  return {
    upgrade(req, socket, head) {
      const path = new URL(req.url ?? '/', 'http://hub').pathname;
      const match = path.match(SESSIONS_PATH);
      if (!match || req.method !== 'GET') {
        socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
        return;
      }
      // Keystrokes and credit grants are small and waited for: no Nagle.
      (socket as Socket).setNoDelay?.(true);
      let deviceId: string;
      try {
        deviceId = decodeURIComponent(match[1]!);
      } catch {
        deviceId = match[1]!;
      }
      wss.handleUpgrade(req, socket, head, (ws) => {
        serveSessionSocket(ws, req, deviceId, deps).catch((err: unknown) => {
          deps.logger.error({ deviceId, err }, 'remote-access session failed');
          ws.terminate();
        });
      });
    },

    async close() {
      for (const session of deps.registry.all()) session.link.shutdown();
      const open = [...wss.clients];
      for (const ws of open) if (ws.readyState === ws.OPEN) ws.close(1001, 'the hub is shutting down');
      await Promise.race([
        Promise.all(
          open.map((ws) => new Promise((resolve) => (ws.readyState === ws.CLOSED ? resolve(undefined) : ws.once('close', resolve)))),
        ),
        new Promise((resolve) => setTimeout(resolve, CLOSE_GRACE_MS).unref()),
      ]);
      for (const ws of wss.clients) ws.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}
