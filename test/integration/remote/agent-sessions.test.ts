/**
 * The agent's remote sessions that need no container engine — the host
 * shell and port-forwards to the device's loopback — driven by a test that
 * plays the hub over a real broker against a real agent: what the opener
 * receives, what runs on the host, and what is left once a session ends.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import Dockerode from 'dockerode';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DockerRuntime } from '../../../agent/runtime/docker-runtime.js';
import { CHANNEL, FRAME, type SessionRequest } from '../../../shared/remote/index.js';
import { Cleanup } from '../../support/cleanup.js';
import { type FaultProxy, startFaultProxy } from '../../support/fault-proxy.js';
import { LogCapture } from '../../support/logs.js';
import { waitFor } from '../../support/wait.js';
import { type HubDouble, launchAgent, openedResult, startHubDouble, topics } from './agent-hub-double.js';

/**
 * The host shell is $SHELL as a login shell. These tests end shells at once (a hub closing
 * the session, a dropped link), and a login bash killed while its rc files run may leave a
 * lock behind them (pyenv's rehash lock, on this machine's image) that makes every later login
 * shell wait for ever, the other tests' and ssh's included. POSIX sh with no rc files of its
 * own is what these tests need of a shell.
 */
process.env.SHELL = '/bin/sh';

const DEVICE = 'dev-remote';
const NO_ENGINE = '/nonexistent/docker.sock';
const shell = (tty: boolean, size: { rows?: number; cols?: number } = {}): SessionRequest => ({ kind: 'shell', tty, ...size });
const loopback = (port: number): SessionRequest => ({ kind: 'forward', port });

function alive(pid: number): boolean {
  return existsSync(`/proc/${pid}`) && !/^\S+ \S+ Z/.test(readStat(pid));
}

function readStat(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return '';
  }
}

describe('agent remote sessions on the host (shell, loopback port-forward)', () => {
  const cleanup = new Cleanup();
  let hub: HubDouble;
  let logs: LogCapture;

  beforeEach(async () => {
    hub = await startHubDouble(cleanup);
    logs = new LogCapture('info');
  });
  afterEach(() => cleanup.run());

  async function agent(config: Record<string, unknown> = {}, hubUrl = hub.url): Promise<void> {
    const runtime = new DockerRuntime(new Dockerode({ socketPath: NO_ENGINE }));
    await launchAgent(cleanup, { hubUrl, runtime, logs, config });
    await hub.deviceReady(DEVICE);
  }

  /** A TCP echo server on loopback: the device-local service a port-forward reaches. */
  async function echoServer(): Promise<{ port: number; sockets: Set<Socket> }> {
    const sockets = new Set<Socket>();
    const server: Server = createServer({ allowHalfOpen: true }, (socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => {});
      socket.pipe(socket);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanup.add('echo server', () => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    });
    return { port: (server.address() as { port: number }).port, sockets };
  }

  it('refuses a host shell unless the agent allows it', async () => {
    await agent();
    const { reply, peer } = await hub.open(DEVICE, shell(false));
    expect(reply).toMatchObject({ ok: false, error: { code: 'forbidden', message: expect.stringContaining('--allow-host-shell') } });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(peer.frames).toEqual([]);
  });

  it('runs a host shell without a terminal: stdin in, stdout and stderr apart, the exit code last', async () => {
    await agent({ allowHostShell: true });
    const { reply, peer } = await hub.open(DEVICE, shell(false));
    expect(openedResult(reply).sessionId).toBe(peer.sessionId);
    peer.stdin('echo out-$((6*7)); echo err-line >&2\n');
    await peer.waitForText('out-42');
    peer.stdin('exit 3\n');
    const ending = await peer.ended();
    expect(ending).toMatchObject({ type: FRAME.exit, code: 3 });
    expect(peer.text(CHANNEL.stdio)).toBe('out-42\n');
    expect(peer.text(CHANNEL.stderr)).toBe('err-line\n');
    expect(peer.frames.at(-1)).toBe(ending);
    expect(peer.broken).toBeUndefined();
    const ended = await logs.waitFor('session ended', (r) => r.sessionId === peer.sessionId);
    expect(ended).toMatchObject({ component: 'remote', kind: 'shell', openedBy: 'test-operator', outcome: 'exited', exitCode: 3 });
  });

  it('gives a host shell a terminal of the requested size and resizes it', async () => {
    await agent({ allowHostShell: true });
    const { reply, peer } = await hub.open(DEVICE, shell(true, { rows: 30, cols: 100 }));
    expect(reply.ok).toBe(true);
    peer.stdin('stty size\n');
    await peer.waitForText('30 100');
    peer.send({ type: FRAME.resize, channel: CHANNEL.session, rows: 41, cols: 123 });
    // Typed right after the resize, once: the resize must have taken effect before the shell reads it.
    peer.stdin('stty size\n');
    await peer.waitForText('41 123');
    peer.stdin('exit 5\n');
    expect(await peer.ended()).toMatchObject({ type: FRAME.exit, code: 5 });
    expect(peer.bytes(CHANNEL.stderr).length).toBe(0);
  });

  it('stops sending when the opener stops granting, and goes on when it grants', async () => {
    await agent({ allowHostShell: true });
    const window = 64 * 1024;
    const { peer } = await hub.open(DEVICE, shell(false), { window, autoGrant: false });
    peer.stdin('head -c 1000000 /dev/zero; exit 0\n');
    await peer.waitFor('a window of output', () => peer.bytes().length >= window);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(peer.bytes().length).toBe(window);
    expect(peer.ending()).toBeUndefined();
    // Grant the rest in steps, as a reader that consumes would.
    let granted = window;
    await peer.waitFor('all output and the exit', () => {
      const received = peer.bytes().length;
      if (received === granted && received < 1_000_000) {
        peer.send({ type: FRAME.window, channel: CHANNEL.stdio, bytes: window });
        granted += window;
      }
      return peer.ending();
    });
    expect(peer.bytes().length).toBe(1_000_000);
    expect(peer.ending()).toMatchObject({ type: FRAME.exit, code: 0 });
  });

  it('forwards connections to a port on the device: echo both ways, half-close, refused ports', async () => {
    await agent();
    const echo = await echoServer();
    const { reply, peer } = await hub.open(DEVICE, loopback(echo.port));
    expect(openedResult(reply)).toEqual({ sessionId: peer.sessionId });
    for (const channel of [1, 2]) peer.send({ type: FRAME.open, channel });
    await peer.waitFor('both connections opened', () => peer.frames.filter((f) => f.type === FRAME.opened).length === 2);
    const payload = Buffer.alloc(200_000, 7);
    for (let offset = 0; offset < payload.length; offset += 32 * 1024) {
      peer.send({ type: FRAME.data, channel: 1, data: payload.subarray(offset, offset + 32 * 1024) });
    }
    peer.send({ type: FRAME.data, channel: 2, data: Buffer.from('second') });
    peer.send({ type: FRAME.eof, channel: 1 });
    await peer.waitFor('the echo of channel 1 and its EOF', () => peer.frames.some((f) => f.type === FRAME.eof && f.channel === 1));
    expect(peer.bytes(1).equals(payload)).toBe(true);
    await peer.waitFor('the echo of channel 2', () => peer.text(2) === 'second');
    // Channel 2 is still open after channel 1 half-closed and ended.
    expect(peer.frames.some((f) => f.channel === 2 && (f.type === FRAME.eof || f.type === FRAME.close))).toBe(false);
    peer.send({ type: FRAME.close, channel: 2, reason: 'client reset' });
    await waitFor('the echo server sees both connections gone', () => echo.sockets.size === 0);

    // A port nobody listens on: CLOSE with the reason, and the session goes on.
    const closed = await new Promise<number>((resolve) => {
      const s = createServer();
      s.listen(0, '127.0.0.1', () => {
        const port = (s.address() as { port: number }).port;
        s.close(() => resolve(port));
      });
    });
    const { peer: refused } = await hub.open(DEVICE, loopback(closed));
    refused.send({ type: FRAME.open, channel: 1 });
    const close = await refused.waitFor('CLOSE 1', () => refused.frames.find((f) => f.type === FRAME.close && f.channel === 1));
    expect(close).toMatchObject({ reason: expect.stringContaining('connection refused') });
    expect(refused.ending()).toBeUndefined();
  });

  it('answers busy beyond --max-sessions, and has room again once one ends', async () => {
    await agent({ maxSessions: 2 });
    const echo = await echoServer();
    const first = await hub.open(DEVICE, loopback(echo.port));
    const second = await hub.open(DEVICE, loopback(echo.port));
    expect([first.reply.ok, second.reply.ok]).toEqual([true, true]);
    const third = await hub.open(DEVICE, loopback(echo.port));
    expect(third.reply).toMatchObject({ ok: false, error: { code: 'busy' } });
    first.peer.send({ type: FRAME.close, channel: CHANNEL.session, reason: 'done' });
    await logs.waitFor('session ended', (r) => r.sessionId === first.peer.sessionId && r.outcome === 'closed');
    expect((await hub.open(DEVICE, loopback(echo.port))).reply.ok).toBe(true);
  });

  it('ends a session that stays idle past --session-idle-timeout, and not one that moves data', async () => {
    await agent({ sessionIdleTimeoutMs: 1_500, allowHostShell: true });
    const echo = await echoServer();
    const idle = await hub.open(DEVICE, loopback(echo.port));
    const busy = await hub.open(DEVICE, shell(false));
    const started = Date.now();
    const timer = setInterval(() => busy.peer.stdin('echo tick\n'), 300);
    cleanup.add('ticker', () => clearInterval(timer));
    const ending = await idle.peer.ended(5_000);
    expect(ending).toMatchObject({ type: FRAME.close, channel: CHANNEL.session, reason: expect.stringMatching(/^idle for 1500ms/) });
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_200);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(busy.peer.ending()).toBeUndefined();
    clearInterval(timer);
    expect(await busy.peer.ended(5_000)).toMatchObject({ type: FRAME.close, reason: expect.stringMatching(/^idle/) });
    await logs.waitFor('session ended', (r) => r.sessionId === idle.peer.sessionId && r.outcome === 'idle');
  });

  it('kills the session when the hub closes it, and sends nothing more', async () => {
    await agent({ allowHostShell: true });
    const { peer } = await hub.open(DEVICE, shell(false));
    peer.stdin('echo pid=$$\n');
    const pid = Number((await peer.waitForText('pid=')).match(/pid=(\d+)/)![1]);
    expect(alive(pid)).toBe(true);
    await hub.command(DEVICE, {
      id: 'close-1',
      type: 'session.close',
      args: { sessionId: peer.sessionId, reason: 'opener left' },
      expiresAt: new Date(Date.now() + 30_000).toISOString(),
    });
    await waitFor('the shell gone', () => !alive(pid));
    const count = peer.frames.length;
    peer.stdin('echo still-there\n');
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(peer.frames.length).toBe(count);
    expect(peer.ending()).toBeUndefined();
  });

  it('ends every session at once when the link to the hub drops: the host shell is gone', async () => {
    const proxy: FaultProxy = await startFaultProxy({ targetPort: hub.port });
    cleanup.add('proxy', () => proxy.close());
    await agent({ allowHostShell: true }, proxy.url);
    const { peer } = await hub.open(DEVICE, shell(false));
    peer.stdin('echo pid=$$\n');
    const pid = Number((await peer.waitForText('pid=')).match(/pid=(\d+)/)![1]);
    proxy.down();
    await waitFor('the shell gone after the link dropped', () => !alive(pid), { timeoutMs: 5_000 });
    await logs.waitFor('session ended', (r) => r.sessionId === peer.sessionId && r.outcome === 'link_lost');
    proxy.up();
  });

  it('drops bad commands and frames with a logged reason and keeps serving', async () => {
    await agent({ allowHostShell: true });
    const commands = topics.device(DEVICE, 'commands');
    await hub.client.publishAsync(commands, '{"id": "x"', { qos: 1 });
    await logs.waitFor('invalid command dropped');
    await hub.command(DEVICE, {
      id: 'bad-args',
      type: 'session.open',
      args: { sessionId: 'short', request: { kind: 'shell' } },
      expiresAt: new Date(Date.now() + 30_000).toISOString(),
    });
    expect(await hub.reply('bad-args')).toMatchObject({ ok: false, error: { code: 'invalid' } });
    await hub.command(DEVICE, {
      id: 'expired',
      type: 'session.open',
      args: { sessionId: 'A'.repeat(22), request: shell(false), window: 65536, openedBy: 'x' },
      expiresAt: new Date(Date.now() - 1_000).toISOString(),
    });
    await logs.waitFor('expired command ignored', (r) => r.commandId === 'expired');
    expect(hub.repliesTo('expired')).toEqual([]);

    // A frame out of sequence ends the session with the reason.
    const { peer } = await hub.open(DEVICE, shell(false));
    await hub.client.publishAsync(topics.session(DEVICE, peer.sessionId, 'down'), Buffer.from([1, 0, 0, 0, 9, 0, 0, 0, 1, 65]), {
      qos: 0,
    });
    expect(await peer.ended()).toMatchObject({ type: FRAME.close, reason: expect.stringContaining('expected frame 0, got 9') });
    // And the agent still opens the next one.
    const next = await hub.open(DEVICE, shell(false));
    next.peer.stdin('exit 0\n');
    expect(await next.peer.ended()).toMatchObject({ type: FRAME.exit, code: 0 });
  });
});
