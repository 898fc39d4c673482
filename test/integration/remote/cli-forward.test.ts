/**
 * `flotilla port-forward` and `flotilla ssh-proxy` against a hub played by
 * the test (cli-hub-double.ts) that also plays the device: it answers OPEN N
 * by connecting to a real TCP echo server on loopback and relays each
 * channel within the flow-control windows, as the agent does. What is
 * checked is what a user of the local port sees.
 */
import { createHash, randomBytes } from 'node:crypto';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ReceiveWindow, SendCredit } from '../../../shared/remote/flow.js';
import { FRAME, MAX_DATA_BYTES } from '../../../shared/remote/frames.js';
import { Cleanup } from '../../support/cleanup.js';
import { freePort } from '../../support/ports.js';
import { waitFor } from '../../support/wait.js';
import { type DoubleSession, HubDouble } from './cli-hub-double.js';
import { CliRun } from './cli-session-run.js';

const SLOW = { timeout: 60_000 };
const WINDOW = 64 * 1024;
const cleanup = new Cleanup();
let hub: HubDouble;
let echoPort: number;

beforeEach(async () => {
  hub = await HubDouble.start();
  cleanup.add('hub double', () => hub.close());
  const connections = new Set<Socket>();
  const echo = createServer({ allowHalfOpen: true }, (socket) => {
    connections.add(socket);
    socket.once('close', () => connections.delete(socket));
    socket.pipe(socket);
  });
  await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
  echoPort = (echo.address() as { port: number }).port;
  cleanup.add('echo server', () => {
    for (const socket of connections) socket.destroy();
    return closeServer(echo);
  });
});
afterEach(() => cleanup.run());

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

function flotilla(args: string[]): CliRun {
  return new CliRun(args, { FLOTILLA_HUB: hub.url, FLOTILLA_TOKEN: 'k-admin' }, cleanup);
}

/** The device's side of a forward session: each OPEN N a connection to `port` on loopback (as it is then), relayed within the windows. */
function relayTo(s: DoubleSession, port: number | (() => number)): void {
  s.opened(WINDOW);
  const sockets = new Map<number, Socket>();
  const credit = new SendCredit(WINDOW);
  const inbound = new ReceiveWindow((channel, bytes) => s.send({ type: FRAME.window, channel, bytes }), WINDOW);
  s.onFrame((f) => {
    const socket = sockets.get(f.channel);
    switch (f.type) {
      case FRAME.open: {
        const target = connect({ port: typeof port === 'number' ? port : port(), host: '127.0.0.1', allowHalfOpen: true });
        sockets.set(f.channel, target);
        target.once('connect', () => {
          credit.open(f.channel);
          inbound.open(f.channel);
          s.send({ type: FRAME.opened, channel: f.channel });
          target.on('data', (chunk: Buffer) => {
            for (let offset = 0; offset < chunk.length; offset += MAX_DATA_BYTES) {
              const piece = chunk.subarray(offset, offset + MAX_DATA_BYTES);
              s.send({ type: FRAME.data, channel: f.channel, data: piece });
              if (!credit.spend(f.channel, piece.length)) {
                target.pause();
                credit.onCredit(f.channel, () => target.resume());
              }
            }
          });
          target.once('end', () => s.send({ type: FRAME.eof, channel: f.channel }));
        });
        target.once('error', (err) => {
          sockets.delete(f.channel);
          s.send({ type: FRAME.close, channel: f.channel, reason: err.message });
        });
        return;
      }
      case FRAME.data:
        inbound.received(f.channel, f.data.length);
        socket?.write(f.data, () => inbound.consumed(f.channel, f.data.length));
        return;
      case FRAME.window:
        credit.grant(f.channel, f.bytes);
        return;
      case FRAME.eof:
        socket?.end();
        return;
      case FRAME.close:
        socket?.destroy();
        sockets.delete(f.channel);
        return;
      default:
        return;
    }
  });
  s.ws.once('close', () => {
    for (const socket of sockets.values()) socket.destroy();
  });
}

/** Sends `data` on a new connection to `port`, half-closes, and returns what came back. */
function roundTrip(port: number, data: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.once('end', () => resolve(Buffer.concat(chunks)));
    socket.once('error', reject);
    socket.end(data);
  });
}

async function listeningPort(run: CliRun): Promise<number> {
  const match = await waitFor(
    `the forwarding line (stderr: ${run.stderr})`,
    () => /Forwarding from 127\.0\.0\.1:(\d+) -> /.exec(run.stderr) ?? undefined,
  );
  return Number(match[1]);
}

const sha = (data: Buffer) => createHash('sha256').update(data).digest('hex');

describe('flotilla port-forward', () => {
  it('forwards concurrent connections through one session, each whole, and exits 0 on SIGTERM', SLOW, async () => {
    hub.onSession((s) => relayTo(s, echoPort));
    const run = flotilla(['port-forward', 'pi-1', '0:web/main:8080']);
    const port = await listeningPort(run);
    expect(run.stderr).toBe(`Forwarding from 127.0.0.1:${port} -> pi-1 web/main:8080\n`);
    expect(hub.sessions[0]?.request).toEqual({ kind: 'forward', app: 'web', container: 'main', port: 8080 });

    const payloads = Array.from({ length: 6 }, () => randomBytes(2 * 1024 * 1024));
    const echoed = await Promise.all(payloads.map((data) => roundTrip(port, data)));
    expect(echoed.map(sha)).toEqual(payloads.map(sha));
    expect(hub.sessions).toHaveLength(1);
    const opens = hub.sessions[0]!.frames.filter((f) => f.type === FRAME.open).map((f) => f.channel);
    expect(opens.sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6]);

    run.child.kill('SIGTERM');
    expect(await run.exited).toBe(0);
    // The CLI closed its socket, which is what makes the hub end the session on the device.
    expect((await hub.sessions[0]!.closed).code).toBe(1000);
  });

  it('reports a connection the device could not make and keeps forwarding the others', SLOW, async () => {
    const closedPort = await freePort();
    let target = closedPort;
    hub.onSession((s) => relayTo(s, () => target));
    const run = flotilla(['port-forward', 'pi-1', '0:22']);
    const port = await listeningPort(run);
    expect(hub.sessions[0]?.request).toEqual({ kind: 'forward', port: 22 });
    // Closed (reset) without a byte back.
    const refused = await roundTrip(port, Buffer.from('x')).then(
      (data) => `${data.length} bytes`,
      (err: NodeJS.ErrnoException) => err.code,
    );
    expect(['0 bytes', 'ECONNRESET']).toContain(refused);
    await waitFor('the refusal on stderr', () =>
      run.stderr.includes('error: connection 1 to pi-1 127.0.0.1:22 failed on the device: connect ECONNREFUSED'),
    );
    target = echoPort;
    expect((await roundTrip(port, Buffer.from('still here'))).toString()).toBe('still here');
    expect(run.child.exitCode).toBeNull();
  });

  it('exits 1 with the reason when the session ends under it', SLOW, async () => {
    hub.onSession((s) => relayTo(s, echoPort));
    const run = flotilla(['port-forward', 'pi-1', '0:web:80']);
    await listeningPort(run);
    hub.sessions[0]!.send({ type: FRAME.close, channel: 0, reason: 'idle for 15m' });
    expect(await run.exited).toBe(1);
    expect(run.stderr).toContain('error: the session ended on the device: idle for 15m');
  });

  it('refuses a bad port spec before contacting the hub (exit 2)', SLOW, async () => {
    const run = flotilla(['port-forward', 'pi-1', '99999:80']);
    expect(await run.exited).toBe(2);
    expect(run.stderr).toBe('error: invalid port-forward "99999:80": the local port "99999" is not a port number (0-65535)\n');
    expect(hub.sessions).toEqual([]);
  });

  it('exits 1 naming the address when the local port is taken', SLOW, async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    cleanup.add('taken port', () => closeServer(taken));
    const port = (taken.address() as { port: number }).port;
    hub.onSession((s) => relayTo(s, echoPort));
    const run = flotilla(['port-forward', 'pi-1', `${port}:web:80`]);
    expect(await run.exited).toBe(1);
    expect(run.stderr).toContain(`error: cannot listen on 127.0.0.1:${port}: listen EADDRINUSE`);
  });
});

describe('flotilla ssh-proxy', () => {
  it("bridges stdin and stdout to the device's loopback port and exits 0 when the connection ends", SLOW, async () => {
    hub.onSession((s) => relayTo(s, echoPort));
    const data = randomBytes(1024 * 1024);
    const run = flotilla(['ssh-proxy', 'pi-1', '22']).input(data);
    expect(await run.exited).toBe(0);
    expect(sha(Buffer.concat(run.stdout))).toBe(sha(data));
    expect(hub.sessions[0]?.request).toEqual({ kind: 'forward', port: 22 });
    expect(run.stderr).toBe('');
  });

  it('exits 1 when the device cannot connect', SLOW, async () => {
    const closedPort = await freePort();
    hub.onSession((s) => relayTo(s, closedPort));
    const run = flotilla(['ssh-proxy', 'pi-1', '22']);
    expect(await run.exited).toBe(1);
    expect(run.stderr).toContain('error: the device could not connect to its port 22: connect ECONNREFUSED');
  });
});
