import type { Client } from 'aedes';

/** The address an MQTT client connected from: its TCP peer, or the HTTP upgrade's for a WebSocket. */
export function remoteAddress(client: Client): string | undefined {
  const conn = client.conn as { remoteAddress?: string };
  return conn.remoteAddress ?? client.req?.socket?.remoteAddress;
}
