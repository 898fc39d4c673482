/**
 * The device's session manager against a runtime whose container lookups
 * finish when the test says (a stand-in for the engine): what is answered,
 * what is sent, and what is killed, when commands and link losses arrive in
 * awkward orders.
 */
import { PassThrough } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { SessionManager } from '../../../agent/remote/session-manager.js';
import type { ExecOptions, RemoteProcess, SessionTarget } from '../../../agent/runtime/runtime.js';
import type { Command, CommandReply } from '../../../shared/index.js';
import { CHANNEL, decodeFrame, FRAME, type Frame, newSessionId, type SessionRequest } from '../../../shared/remote/index.js';

const target: SessionTarget = {
  id: 'c0ffee',
  dockerName: 'shop_web',
  app: 'shop',
  container: 'web',
  networkMode: 'bridge',
  ipAddress: '10.0.0.2',
};
const request: SessionRequest = { kind: 'exec', app: 'shop', command: ['sh'], tty: false, stdin: true };

class FakeProcess implements RemoteProcess {
  readonly stdout = new PassThrough();
  readonly stderr = new PassThrough();
  readonly stdin = new PassThrough();
  killed = false;
  private exit: (code: number) => void = () => {};
  private readonly code = new Promise<number>((resolve) => (this.exit = resolve));
  async resize(): Promise<void> {}
  exited(): Promise<number> {
    return this.code;
  }
  kill(): void {
    this.killed = true;
  }
  finish(code: number): void {
    this.stdout.end();
    this.stderr.end();
    this.exit(code);
  }
}

function setup(maxSessions = 8) {
  const lookups: (() => void)[] = [];
  const processes: FakeProcess[] = [];
  const replies: CommandReply[] = [];
  const frames: Frame[] = [];
  const manager = new SessionManager({
    runtime: {
      // Resolves when the test calls the lookup's release.
      sessionTarget: () => new Promise<SessionTarget>((resolve) => lookups.push(() => resolve(target))),
      exec: async (_t: SessionTarget, _o: ExecOptions) => {
        const p = new FakeProcess();
        processes.push(p);
        return p;
      },
    },
    allowHostShell: false,
    maxSessions,
    idleTimeoutMs: 60_000,
    logger: pino({ level: 'silent' }),
    link: {
      publishReply: (reply) => replies.push(reply),
      publishSessionFrame: (_id, bytes) => {
        const decoded = decodeFrame(bytes);
        if (decoded.ok) frames.push(decoded.frame);
      },
    },
  });
  const open = (sessionId = newSessionId()): string => {
    const command: Command = {
      id: `open-${sessionId}`,
      type: 'session.open',
      args: { sessionId, request, window: 65536, openedBy: 'tester' },
      expiresAt: new Date(Date.now() + 30_000).toISOString(),
    };
    manager.onCommand(command);
    return sessionId;
  };
  return { manager, lookups, processes, replies, frames, open };
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 10));

describe('SessionManager', () => {
  it('counts a session still opening against the limit', async () => {
    const { lookups, replies, open } = setup(1);
    const first = open();
    const second = open();
    await settle();
    expect(replies).toEqual([{ commandId: `open-${second}`, ok: false, error: { code: 'busy', message: expect.any(String) } }]);
    lookups[0]!();
    await settle();
    expect(replies[1]).toEqual({ commandId: `open-${first}`, ok: true, result: { sessionId: first, container: 'shop_web' } });
  });

  it('abandons a session whose start completes after the link dropped: no reply, its process killed', async () => {
    const { manager, lookups, processes, replies, frames, open } = setup();
    open();
    await settle();
    manager.linkLost();
    lookups[0]!();
    await settle();
    expect(replies).toEqual([]);
    expect(processes[0]?.killed).toBe(true);
    expect(frames).toEqual([]);
    expect(manager.count).toBe(0);
  });

  it('sends output, then the exit code last, and frees the slot', async () => {
    const { manager, lookups, processes, frames, open } = setup();
    open();
    await settle();
    lookups[0]!();
    await settle();
    const process = processes[0]!;
    process.stdout.write('hello');
    process.stderr.write('oops');
    await settle();
    process.finish(3);
    await settle();
    expect(frames.map((f) => [f.type, f.channel])).toEqual([
      [FRAME.data, CHANNEL.stdio],
      [FRAME.data, CHANNEL.stderr],
      [FRAME.exit, CHANNEL.session],
    ]);
    expect(frames.at(-1)).toMatchObject({ code: 3 });
    expect(process.killed).toBe(false);
    expect(manager.count).toBe(0);
  });

  it('kills the process on session.close and sends nothing more', async () => {
    const { manager, lookups, processes, frames, open } = setup();
    const sessionId = open();
    await settle();
    lookups[0]!();
    await settle();
    manager.onCommand({
      id: 'close',
      type: 'session.close',
      args: { sessionId, reason: 'opener left' },
      expiresAt: new Date(Date.now() + 30_000).toISOString(),
    });
    expect(processes[0]!.killed).toBe(true);
    processes[0]!.stdout.write('late');
    await settle();
    expect(frames).toEqual([]);
    expect(manager.count).toBe(0);
  });
});
