/**
 * A TCP proxy on loopback that keeps a copy of every byte it forwards, both
 * ways: what a device's link would carry, for tests that check what went on
 * the wire (compressed or plain) and how many bytes it was.
 */
import { type AddressInfo, createConnection, createServer, type Socket } from 'node:net';

export interface WireTap {
  readonly url: string;
  /** Everything client → target so far, connections concatenated. */
  upstream(): Buffer;
  bytesUp(): number;
  bytesDown(): number;
  close(): Promise<void>;
}

export async function startWireTap(targetPort: number): Promise<WireTap> {
  const up: Buffer[] = [];
  let bytesUp = 0;
  let bytesDown = 0;
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const target = createConnection({ host: '127.0.0.1', port: targetPort });
    for (const socket of [client, target]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => undefined);
    }
    client.on('data', (chunk: Buffer) => {
      up.push(chunk);
      bytesUp += chunk.length;
      target.write(chunk);
    });
    target.on('data', (chunk: Buffer) => {
      bytesDown += chunk.length;
      client.write(chunk);
    });
    client.on('close', () => target.destroy());
    target.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `mqtt://127.0.0.1:${port}`,
    upstream: () => Buffer.concat(up),
    bytesUp: () => bytesUp,
    bytesDown: () => bytesDown,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
