/**
 * `flotilla exec` and the session client against a hub played by the test
 * (cli-hub-double.ts: a real ws server): what the CLI asks for, output on
 * the right stream, stdin and its EOF, the command's exit code, flow control
 * over a 50 MB stream, and every way a session fails mapped to the CLI's
 * exit codes with `error: <reason>` on stderr.
 */
import { createHash, randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { encodeFrame, FRAME, MAX_DATA_BYTES } from '../../../shared/remote/frames.js';
import { asBuffer } from '../../../shared/remote/node-bytes.js';
import type { SessionFailureCode } from '../../../shared/remote/websocket.js';
import { Cleanup } from '../../support/cleanup.js';
import { freePort } from '../../support/ports.js';
import { waitFor } from '../../support/wait.js';
import { type DoubleSession, HubDouble } from './cli-hub-double.js';
import { CliRun } from './cli-session-run.js';

const SLOW = { timeout: 60_000 };
const cleanup = new Cleanup();
let hub: HubDouble;

beforeEach(async () => {
  hub = await HubDouble.start();
  cleanup.add('hub double', () => hub.close());
});
afterEach(() => cleanup.run());

function flotilla(args: string[], options: { env?: NodeJS.ProcessEnv; readStdout?: boolean } = {}): CliRun {
  return new CliRun(args, { FLOTILLA_HUB: hub.url, FLOTILLA_TOKEN: 'k-operator', ...options.env }, cleanup, options);
}

describe('flotilla exec', () => {
  it('sends the request with the token, prints stdout and stderr apart, and exits with the command code', SLOW, async () => {
    hub.onSession((s) => {
      s.opened();
      s.send({ type: FRAME.data, channel: 1, data: Buffer.from('to stdout\n') });
      s.send({ type: FRAME.data, channel: 2, data: Buffer.from('to stderr\n') });
      s.send({ type: FRAME.exit, channel: 0, code: 7 });
    });
    const run = flotilla(['exec', 'pi-1', 'web/main', '--', 'sh', '-c', 'echo hi; exit 7']).input('');
    expect(await run.exited).toBe(7);
    expect(run.out).toBe('to stdout\n');
    expect(run.stderr).toBe('to stderr\n');
    const [session] = hub.sessions;
    expect(session?.device).toBe('pi-1');
    expect(session?.authorization).toBe('Bearer k-operator');
    expect(session?.request).toEqual({
      kind: 'exec',
      app: 'web',
      container: 'main',
      command: ['sh', '-c', 'echo hi; exit 7'],
      tty: false,
      stdin: false,
    });
    // Without -i nothing is sent on stdin's channel.
    expect(session?.frames.filter((f) => f.type === FRAME.data)).toEqual([]);
  });

  it('passes stdin with -i and its end as EOF 1: `echo x | flotilla exec -i dev app -- cat` prints x', SLOW, async () => {
    hub.onSession(async (s) => {
      s.opened();
      await s.next((f) => f.type === FRAME.eof && f.channel === 1);
      s.send({ type: FRAME.data, channel: 1, data: s.dataOn(1) });
      s.send({ type: FRAME.exit, channel: 0, code: 0 });
    });
    const run = flotilla(['exec', '-i', 'pi-1', 'web', '--', 'cat']).input('x\n');
    expect(await run.exited).toBe(0);
    expect(run.out).toBe('x\n');
    expect(hub.sessions[0]?.request).toMatchObject({ kind: 'exec', app: 'web', stdin: true, tty: false });
  });

  it('asks for a terminal with -t and exits with its code', SLOW, async () => {
    hub.onSession((s) => {
      s.opened();
      s.send({ type: FRAME.data, channel: 1, data: Buffer.from('$ ') });
      s.send({ type: FRAME.exit, channel: 0, code: 130 });
    });
    const run = flotilla(['exec', '-it', 'pi-1', 'web', '--', 'sh']).input('');
    expect(await run.exited).toBe(130);
    expect(run.out).toBe('$ ');
    expect(hub.sessions[0]?.request).toMatchObject({ kind: 'exec', tty: true, stdin: true, command: ['sh'] });
  });

  it('delivers a 50 MB stdout whole and in order, granting back only what arrived', SLOW, async () => {
    const TOTAL = 50 * 1024 * 1024;
    const WINDOW = 256 * 1024;
    const payload = randomBytes(TOTAL);
    hub.onSession((s) => void streamWithinCredit(s, payload, WINDOW));
    const run = flotilla(['exec', 'pi-1', 'web', '--', 'cat', '/big']).input('');
    expect(await run.exited).toBe(0);
    const received = Buffer.concat(run.stdout);
    expect(received.length).toBe(TOTAL);
    expect(createHash('sha256').update(received).digest('hex')).toBe(createHash('sha256').update(payload).digest('hex'));
    // The device only sends within credit, so all of it arriving means the CLI granted at least TOTAL - WINDOW back.
    const grants = hub.sessions[0]!.frames.flatMap((f) => (f.type === FRAME.window ? [f] : []));
    expect(grants.every((f) => f.channel === 1 && f.bytes >= WINDOW / 4)).toBe(true);
    expect(grants.reduce((sum, f) => sum + f.bytes, 0)).toBeLessThanOrEqual(TOTAL);
  });

  it('stops the flow while its stdout is not read, and finishes once it is', SLOW, async () => {
    const TOTAL = 8 * 1024 * 1024;
    const WINDOW = 256 * 1024;
    const payload = randomBytes(TOTAL);
    let sent = 0;
    hub.onSession((s) => void streamWithinCredit(s, payload, WINDOW, (bytes) => (sent = bytes)));
    const run = flotilla(['exec', 'pi-1', 'web', '--', 'cat', '/big'], { readStdout: false }).input('');
    run.child.stdout.pause();
    await waitFor('the first window sent', () => sent >= WINDOW);
    await new Promise((resolve) => setTimeout(resolve, 2000));
    // The window, what the pipe holds (64 KiB on Linux) and the CLI's one write in progress: nowhere near 8 MB.
    expect(sent).toBeLessThan(1024 * 1024);
    const chunks: Buffer[] = [];
    run.child.stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
    run.child.stdout.resume();
    expect(await run.exited).toBe(0);
    expect(Buffer.concat(chunks).equals(payload)).toBe(true);
  });
});

/** Sends `payload` on channel 1 as a device does: within the credit, resumed by WINDOW 1 grants; then EXIT 0. */
async function streamWithinCredit(
  s: DoubleSession,
  payload: Buffer,
  window: number,
  onSent: (bytes: number) => void = () => undefined,
): Promise<void> {
  s.opened(window);
  let credit = window;
  let wake: (() => void) | undefined;
  s.onFrame((f) => {
    if (f.type === FRAME.window && f.channel === 1) {
      credit += f.bytes;
      wake?.();
    }
  });
  let offset = 0;
  while (offset < payload.length) {
    if (credit <= 0) {
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
      wake = undefined;
      continue;
    }
    const n = Math.min(MAX_DATA_BYTES, credit, payload.length - offset);
    s.send({ type: FRAME.data, channel: 1, data: payload.subarray(offset, offset + n) });
    credit -= n;
    offset += n;
    onSent(offset);
  }
  s.send({ type: FRAME.exit, channel: 0, code: 0 });
}

describe('a session that fails', () => {
  const REFUSALS: [SessionFailureCode, number][] = [
    ['not_found', 3],
    ['unauthorized', 4],
    ['forbidden', 4],
    ['invalid_request', 2],
    ['busy', 1],
    ['offline', 1],
    ['timeout', 1],
  ];
  it("maps each refusal to its exit code with the hub's reason on stderr", SLOW, async () => {
    for (const [code, exit] of REFUSALS) {
      hub.onSession((s) => s.fail(code, `refused as ${code}`));
      const run = flotilla(['exec', 'pi-1', 'web', '--', 'true']).input('');
      expect({ code, exit: await run.exited }).toEqual({ code, exit });
      expect(run.stderr).toContain(`error: refused as ${code}\n`);
      expect(run.out).toBe('');
    }
  });

  it('reports a link lost mid-session (SessionFailed link_lost, close 4504) and exits 1', SLOW, async () => {
    hub.onSession((s) => {
      s.opened();
      s.send({ type: FRAME.data, channel: 1, data: Buffer.from('partial') });
      setTimeout(() => s.fail('link_lost', 'the device pi-1 lost its link to the hub'), 100);
    });
    const run = flotilla(['exec', 'pi-1', 'web', '--', 'sleep', '60']).input('');
    expect(await run.exited).toBe(1);
    expect(run.out).toBe('partial');
    expect(run.stderr).toBe('error: the device pi-1 lost its link to the hub\n');
  });

  it('names the failure from the close code alone when no message came first', SLOW, async () => {
    hub.onSession((s) => {
      s.opened();
      s.ws.close(4505);
    });
    const run = flotilla(['exec', 'pi-1', 'web', '--', 'sleep', '60']).input('');
    expect(await run.exited).toBe(1);
    expect(run.stderr).toContain('error: the hub ended the session: idle');
  });

  it("reports the device's CLOSE 0 reason (an idle session) and exits 1", SLOW, async () => {
    hub.onSession((s) => {
      s.opened();
      s.send({ type: FRAME.close, channel: 0, reason: 'idle for 15m' });
    });
    const run = flotilla(['exec', '-i', 'pi-1', 'web', '--', 'cat']);
    expect(await run.exited).toBe(1);
    expect(run.stderr).toContain('error: the session ended on the device: idle for 15m');
  });

  it('ends the session when a frame is missing (seq gap) and exits 1', SLOW, async () => {
    hub.onSession((s) => {
      s.opened();
      s.sendRaw(asBuffer(encodeFrame({ type: FRAME.data, seq: 0, channel: 1, data: Buffer.from('a') })));
      s.sendRaw(asBuffer(encodeFrame({ type: FRAME.data, seq: 2, channel: 1, data: Buffer.from('c') })));
    });
    const run = flotilla(['exec', 'pi-1', 'web', '--', 'sleep', '60']).input('');
    expect(await run.exited).toBe(1);
    expect(run.out).toBe('a');
    expect(run.stderr).toContain('error: frames lost on the link: expected frame 1, got 2');
    // The CLI closed its socket: the hub (and so the device) learns the session is over.
    await hub.sessions[0]?.closed;
  });

  it('says the hub is lost when it stops answering pings, within two ping intervals and a bit', SLOW, async () => {
    await hub.close();
    hub = await HubDouble.start({ autoPong: false });
    cleanup.add('silent hub double', () => hub.close());
    hub.onSession((s) => s.opened());
    const run = flotilla(['exec', '-i', 'pi-1', 'web', '--ping-interval', '1s', '--', 'cat']);
    await waitFor('the session opened', () => hub.sessions.length === 1);
    const opened = Date.now();
    expect(await run.exited).toBe(1);
    const took = Date.now() - opened;
    expect(run.stderr).toContain('error: lost the hub at');
    expect(run.stderr).toContain('no answer to 2 pings');
    expect(took).toBeGreaterThanOrEqual(1500);
    expect(took).toBeLessThan(8000);
  });

  it('says the hub cannot be reached when nothing listens there', SLOW, async () => {
    const port = await freePort();
    const run = flotilla(['exec', 'pi-1', 'web', '--', 'true'], { env: { FLOTILLA_HUB: `http://127.0.0.1:${port}` } }).input('');
    expect(await run.exited).toBe(1);
    expect(run.stderr).toContain(`error: cannot reach the hub at http://127.0.0.1:${port}`);
  });

  it('refuses a bad APP/CONTAINER before contacting the hub (exit 2)', SLOW, async () => {
    const run = flotilla(['exec', 'pi-1', 'web/main/extra', '--', 'true']).input('');
    expect(await run.exited).toBe(2);
    expect(run.stderr).toContain('error: invalid APP[/CONTAINER] "web/main/extra"');
    expect(hub.sessions).toEqual([]);
  });
});
