/**
 * `flotilla exec -it` at a real terminal (a tmux pane: test/support/pty.ts)
 * against a hub played by the test: the size goes in the request and every
 * resize follows as RESIZE; keys reach the device as typed, Ctrl-C and
 * Ctrl-D included, without waiting for Enter (raw mode); and once the
 * session is over the terminal is back in its cooked, echoing mode.
 */
import { execFileSync } from 'node:child_process';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { FRAME, type Frame } from '../../../shared/remote/frames.js';
import { Cleanup } from '../../support/cleanup.js';
import { CLI } from '../../support/processes.js';
import { Terminal } from '../../support/pty.js';
import { waitFor } from '../../support/wait.js';
import { HubDouble } from './cli-hub-double.js';

const cleanup = new Cleanup();
let hub: HubDouble;
const hasTmux = (() => {
  try {
    execFileSync('tmux', ['-V']);
    return true;
  } catch {
    return false;
  }
})();

beforeEach(async () => {
  hub = await HubDouble.start();
  cleanup.add('hub double', () => hub.close());
});
afterEach(() => cleanup.run());

it.skipIf(!hasTmux && process.env.CI !== 'true')(
  'passes raw keys and resizes, exits with the code, and restores the terminal',
  { timeout: 120_000 },
  async () => {
    hub.onSession((s) => {
      s.opened();
      s.send({ type: FRAME.data, channel: 1, data: Buffer.from('remote$ ') });
    });
    const terminal = await Terminal.start(`${process.execPath} ${CLI} exec -it pi-1 web -- sh; echo "exit=$?"; stty -a`, {
      cols: 80,
      rows: 24,
      env: { FLOTILLA_HUB: hub.url },
    });
    cleanup.add('terminal', () => terminal.close());
    // The CLI's start (node and tsx) is slow on a loaded two-core machine.
    await terminal.waitForScreen(/remote\$ /, 45_000);
    const session = hub.sessions[0]!;
    expect(session.request).toMatchObject({ kind: 'exec', tty: true, stdin: true, rows: 24, cols: 80 });

    await terminal.type('ls', { enter: false });
    await terminal.press('C-c');
    await terminal.press('C-d');
    // Raw mode: each key is sent as it is pressed, none handled by the local terminal (no SIGINT, no EOF).
    await waitFor('ls, Ctrl-C and Ctrl-D as bytes', () => session.dataOn(1).toString() === 'ls\x03\x04');
    expect(session.frames.some((f) => f.type === FRAME.eof)).toBe(false);

    await terminal.resize(100, 30);
    const resize = (await session.next((f) => f.type === FRAME.resize && f.cols === 100)) as Extract<Frame, { type: typeof FRAME.resize }>;
    expect({ rows: resize.rows, cols: resize.cols, channel: resize.channel }).toEqual({ rows: 30, cols: 100, channel: 0 });

    session.send({ type: FRAME.exit, channel: 0, code: 5 });
    // `stty -a` after the CLI: canonical mode and echo are back.
    const screen = await terminal.waitForScreen(/speed .* baud/);
    expect(screen).toContain('exit=5');
    expect(screen).toMatch(/(^|\s)icanon(\s|$)/m);
    expect(screen).toMatch(/(^|\s)echo(\s|$)/m);
    expect(await terminal.waitForExit()).toBe(0);
  },
);
