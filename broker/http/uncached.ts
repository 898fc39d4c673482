import type { ServerResponse } from 'node:http';

/** A whole answer the client must not cache: what the hub serves for its own files (the dashboard, the install script), so an upgraded hub serves its new ones at once. */
export function sendUncached(res: ServerResponse, status: number, type: string, body: string | Buffer): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-cache' }).end(body);
}
