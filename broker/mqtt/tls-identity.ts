/**
 * Who a client certificate says an MQTT client is (mutual TLS).
 *
 * Invariant: a name comes only from a certificate the TLS layer verified
 * against the hub's client CA (`socket.authorized === true`). The TLS
 * listeners ask for certificates without insisting (broker/tls/listeners.ts),
 * so an absent, self-signed or foreign-CA certificate reaches Aedes too, with
 * `authorized === false`, and names nobody here.
 */
import { TLSSocket } from 'node:tls';
import type { Client } from 'aedes';

/** The subject CN of the client's verified certificate, for MQTT over TLS and over secure WebSocket; else undefined. */
export function tlsPeerCommonName(client: Pick<Client, 'conn' | 'req'>): string | undefined {
  const socket = tlsSocketOf(client);
  if (socket?.authorized !== true) return undefined;
  const cn = socket.getPeerCertificate().subject?.CN;
  // A subject with several CNs names no one device: ambiguity is not identity.
  return typeof cn === 'string' && cn !== '' ? cn : undefined;
}

/**
 * mqtts: Aedes' `client.conn` is the TLSSocket itself. wss: `client.conn` is
 * the WebSocket stream and the TLSSocket is the upgrade request's socket.
 */
function tlsSocketOf(client: Pick<Client, 'conn' | 'req'>): TLSSocket | undefined {
  if (client.conn instanceof TLSSocket) return client.conn;
  const socket = client.req?.socket;
  return socket instanceof TLSSocket ? socket : undefined;
}
