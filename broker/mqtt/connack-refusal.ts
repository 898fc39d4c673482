/**
 * Refusing a CONNECT from Aedes' `preConnect` hook with a CONNACK the client
 * can read. preConnect cannot have Aedes send one: `callback(err)` destroys
 * the socket with none (MQTT.js sees a bare close), and `callback(null, false)`
 * is worse, sending nothing and *keeping the socket open* (Aedes has already
 * cleared its connect timer) until the client gives up. So the four CONNACK
 * bytes are written here, and `callback(err)` closes the connection once they
 * are on their way [MQTT-3.2.2-5].
 */
import type { AedesOptions, Client } from 'aedes';

type PreConnectCallback = Parameters<NonNullable<AedesOptions['preConnect']>>[2];

/** MQTT 3.1.1 CONNACK (§3.2.2): no session present, then the return code. */
function connack(returnCode: number): Buffer {
  return Buffer.from([0x20, 0x02, 0x00, returnCode]);
}

export function refuseConnect(client: Client, returnCode: number, err: Error, callback: PreConnectCallback): void {
  const conn = client.conn;
  if (conn.destroyed || !conn.writable) {
    callback(err, false);
    return;
  }
  // Closed once the CONNACK is handed to the socket: destroying first would drop it.
  conn.write(connack(returnCode), () => callback(err, false));
}
