/**
 * A TCP load balancer on loopback, as operators put in front of hub replicas: each new
 * connection goes to the next backend in turn, skipping one that refuses it, so clients of a
 * replica that died reconnect (through their own backoff) to the others. Bytes are piped as they
 * come; closing either side closes the other.
 */
import { type AddressInfo, createConnection, createServer, type Socket } from 'node:net';

export interface TcpBalancer {
  port: number;
  /** Connections made to each backend port so far. */
  readonly routed: ReadonlyMap<number, number>;
  close(): Promise<void>;
}

export async function startTcpBalancer(backends: readonly number[]): Promise<TcpBalancer> {
  let next = 0;
  const sockets = new Set<Socket>();
  const routed = new Map<number, number>();
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  };
  const connect = (client: Socket, tries: number) => {
    if (tries === 0 || client.destroyed) {
      client.destroy();
      return;
    }
    const port = backends[next++ % backends.length]!;
    const upstream = createConnection({ host: '127.0.0.1', port });
    track(upstream);
    let connected = false;
    upstream.on('error', () => {
      if (connected) client.destroy();
      else connect(client, tries - 1);
    });
    upstream.once('connect', () => {
      connected = true;
      routed.set(port, (routed.get(port) ?? 0) + 1);
      client.pipe(upstream);
      upstream.pipe(client);
      client.resume();
      upstream.once('close', () => client.destroy());
      client.once('close', () => upstream.destroy());
    });
  };
  const server = createServer({ pauseOnConnect: true }, (client) => {
    track(client);
    client.on('error', () => client.destroy());
    connect(client, backends.length);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    routed,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
