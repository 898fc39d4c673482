/**
 * The thin link (test/support/thin-link.ts) with real sockets on loopback: an
 * echo server stands for the hub, a server that writes as fast as it may
 * stands for a registry serving a blob. What the tests rely on: bytes pass
 * unchanged, never faster than the capacity, and a small message waits behind
 * a flood in the one queue, but not behind a flood its own receiver holds back.
 */
import { randomBytes } from 'node:crypto';
import { type AddressInfo, createConnection, createServer, type Server, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { afterEach, describe, expect, it } from 'vitest';
import { Cleanup } from '../support/cleanup.js';
import { startThinLink, type ThinLink, type ThinLinkOptions, type ThinLinkRoute } from '../support/thin-link.js';
import { waitFor } from '../support/wait.js';

const KiB = 1024;

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

async function closeServer(server: Server, sockets: Set<Socket>): Promise<void> {
  for (const socket of sockets) socket.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/** Tracks a server's sockets so cleanup can destroy them. */
function tracked(onSocket: (socket: Socket) => void): { server: Server; sockets: Set<Socket> } {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
    onSocket(socket);
  });
  return { server, sockets };
}

async function connect(route: ThinLinkRoute): Promise<Socket> {
  const socket = createConnection({ host: '127.0.0.1', port: route.port });
  socket.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return socket;
}

/** Reads until `bytes` arrived; resolves with them. */
function receive(socket: Socket, bytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let got = 0;
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      got += chunk.length;
      if (got >= bytes) {
        socket.off('data', onData);
        resolve(Buffer.concat(chunks));
      }
    };
    socket.on('data', onData);
    socket.once('close', () => reject(new Error(`closed after ${got} of ${bytes} bytes`)));
  });
}

describe('thin link', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  function thinLink(options: ThinLinkOptions): ThinLink {
    const link = startThinLink(options);
    cleanup.add('thin link', () => link.close());
    return link;
  }

  async function client(route: ThinLinkRoute): Promise<Socket> {
    const socket = await connect(route);
    cleanup.add('client', () => socket.destroy());
    return socket;
  }

  async function echoServer(): Promise<number> {
    const echo = tracked((socket) => socket.pipe(socket));
    cleanup.add('echo server', () => closeServer(echo.server, echo.sockets));
    return listen(echo.server);
  }

  /** Writes `total` bytes (forever without) to each connection, honouring backpressure; `writers` shows who is held. */
  async function floodServer(total = Number.POSITIVE_INFINITY): Promise<{ port: number; writers: Socket[] }> {
    const writers: Socket[] = [];
    const flood = tracked((socket) => {
      writers.push(socket);
      const block = randomBytes(16 * KiB);
      let sent = 0;
      const pump = () => {
        while (sent < total && !socket.destroyed) {
          const chunk = block.subarray(0, Math.min(block.length, total - sent));
          sent += chunk.length;
          if (!socket.write(chunk)) return void socket.once('drain', pump);
        }
        if (sent >= total) socket.end();
      };
      pump();
    });
    cleanup.add('flood server', () => closeServer(flood.server, flood.sockets));
    return { port: await listen(flood.server), writers };
  }

  it('forwards both ways unchanged and counts the bytes of each route', async () => {
    const link = thinLink({ downBytesPerSecond: 4 * 1024 * KiB });
    const route = await link.route(await echoServer());
    const socket = await client(route);
    const sent = randomBytes(200 * KiB);
    const echoed = receive(socket, sent.length);
    socket.write(sent);
    expect((await echoed).equals(sent)).toBe(true);
    expect(route.stats).toMatchObject({ connections: 1, bytesUp: sent.length, bytesDown: sent.length });
  });

  it('delivers no faster than its capacity', async () => {
    const capacity = 2 * 1024 * KiB;
    const link = thinLink({ downBytesPerSecond: capacity });
    const total = 1024 * KiB;
    const route = await link.route((await floodServer(total)).port);
    const started = performance.now();
    const socket = await client(route);
    await receive(socket, total);
    const seconds = (performance.now() - started) / 1000;
    // A lower bound only: a loaded machine may deliver later, never sooner. The allowance is the link's largest burst (a few ticks).
    expect(seconds).toBeGreaterThanOrEqual((total - 40 * KiB) / capacity);
  });

  it('makes a small message wait behind a flood in the one queue, and not once the flood is gone', async () => {
    const queueBytes = 64 * KiB;
    const link = thinLink({ downBytesPerSecond: 512 * KiB, queueBytes });
    const control = await link.route(await echoServer());
    const download = await link.route((await floodServer()).port);
    const ping = await client(control);
    const flood = await connect(download);
    flood.on('data', () => undefined);
    await waitFor('the queue to fill', () => link.queuedBytes >= queueBytes / 2);

    link.resetPeaks();
    const answer = receive(ping, 5);
    ping.write('ping1');
    expect((await answer).toString()).toBe('ping1');
    expect(control.stats.maxBytesAhead).toBeGreaterThanOrEqual(queueBytes / 2);

    flood.destroy();
    await waitFor('the flood to leave the queue', () => link.queuedBytes === 0);
    link.resetPeaks();
    const second = receive(ping, 5);
    ping.write('ping2');
    expect((await second).toString()).toBe('ping2');
    expect(control.stats.maxBytesAhead).toBe(0);
  });

  it('stops taking from a sender whose receiver does not read, so the others do not wait behind it', async () => {
    const link = thinLink({ downBytesPerSecond: 4 * 1024 * KiB, queueBytes: 64 * KiB });
    const control = await link.route(await echoServer());
    const flooding = await floodServer();
    const download = await link.route(flooding.port);
    const ping = await client(control);
    const stuck = await client(download);
    stuck.pause();
    // Its buffers fill, then the link holds its sender back: the sender cannot write, the queue empties.
    await waitFor('the sender to be held back', () => flooding.writers[0]?.writableNeedDrain && link.queuedBytes === 0, {
      timeoutMs: 20_000,
    });

    link.resetPeaks();
    const answer = receive(ping, 4);
    ping.write('ping');
    expect((await answer).toString()).toBe('ping');
    expect(control.stats.maxBytesAhead).toBe(0);
  });

  it('lets a slow reader set the pace of its bytes on the link: no more than its receive window waits for it', async () => {
    const windowBytes = 128 * KiB;
    const link = thinLink({ downBytesPerSecond: 2 * 1024 * KiB, receiveWindowBytes: windowBytes });
    const download = await link.route((await floodServer()).port);
    const reader = await client(download);
    reader.pause();
    let read = 0;
    let ahead = 0;
    // About 320 KiB/s, a sixth of the link: a paced download.
    for (let tick = 0; tick < 25; tick++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      while (read < (tick + 1) * 32 * KiB) {
        const chunk: Buffer | null = reader.read();
        if (chunk === null) break;
        read += chunk.length;
      }
      ahead = Math.max(ahead, download.stats.bytesDown - read);
    }
    expect(read).toBeGreaterThan(0);
    // The window, plus the one chunk a held sender may still have had admitted, and one read (libuv reads up to
    // 64 KiB at a time) that the reader's Node took from the kernel unasked. Without the window: megabytes.
    expect(ahead).toBeLessThanOrEqual(windowBytes + 2 * 64 * KiB);
  });

  it('closes every connection and listener on close()', async () => {
    const link = thinLink({ downBytesPerSecond: 1024 * KiB });
    const route = await link.route((await floodServer()).port);
    const socket = await client(route);
    socket.on('data', () => undefined);
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    await link.close();
    await closed;
    await expect(connect(route)).rejects.toThrow(/ECONNREFUSED/);
    expect(link.queuedBytes).toBe(0);
  });
});
