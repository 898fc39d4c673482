import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Client } from 'aedes';

/** The address an MQTT client connected from: its TCP peer, or the HTTP upgrade's for a WebSocket. */
export function remoteAddress(client: Client): string | undefined {
  return connectionAddress(client.conn, client.req);
}

/** The same for a connection Aedes has not made a client of yet. */
export function connectionAddress(conn: Duplex, req?: IncomingMessage): string | undefined {
  return (conn as { remoteAddress?: string }).remoteAddress ?? req?.socket?.remoteAddress;
}
