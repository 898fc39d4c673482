/**
 * `exec` and `shell` once their request is built: open the session, put the
 * terminal in raw mode when it is an interactive TTY session, bridge stdio,
 * and end with the remote command's exit code (CommandExit) or the
 * session's failure (CliError). The terminal is restored on every path.
 */
import { CHANNEL, FRAME } from '../../shared/remote/frames.js';
import type { SessionRequest } from '../../shared/remote/requests.js';
import { CommandExit } from '../errors.js';
import { openSession, type SessionTarget } from './session-client.js';
import { onStopSignal } from './session-options.js';
import { bridgeStdio } from './stdio-bridge.js';
import { onTerminalResize, type RawTerminal, rawMode, terminalSize } from './terminal.js';

/** 128 + SIGINT, what a shell reports for a command ended by Ctrl-C. */
const EXIT_INTERRUPTED = 130;

export interface StdioCommandOptions extends SessionTarget {
  device: string;
  request: SessionRequest & { kind: 'exec' | 'shell' };
  /** Pass stdin (`-i`; always for a shell). */
  stdin: boolean;
  pingIntervalMs?: number;
}

export async function runStdioCommand(options: StdioCommandOptions): Promise<void> {
  const { request } = options;
  const session = await openSession(options);
  const tty = request.tty;
  let raw: RawTerminal | undefined;
  if (tty && options.stdin) raw = rawMode(process.stdin);
  const stopResize = tty
    ? onTerminalResize((size) => session.send({ type: FRAME.resize, channel: CHANNEL.session, rows: size.rows, cols: size.cols }))
    : () => undefined;
  const startSize = tty ? terminalSize() : undefined;
  if (startSize) session.send({ type: FRAME.resize, channel: CHANNEL.session, ...startSize });
  let interrupted = false;
  const stopSignals = onStopSignal(() => {
    interrupted = true;
    void session.close();
  });
  try {
    const result = await bridgeStdio(session, {
      stdout: process.stdout,
      stderr: process.stderr,
      ...(options.stdin ? { stdin: process.stdin } : {}),
    });
    if ('error' in result) throw result.error;
    const code = 'code' in result ? result.code : interrupted ? EXIT_INTERRUPTED : 0;
    if (code !== 0) throw new CommandExit(code);
  } finally {
    raw?.restore();
    stopResize();
    stopSignals();
    // A stdin left open (a terminal, a pipe nobody closes) would keep the process alive.
    if (options.stdin) process.stdin.destroy();
  }
}
