/**
 * The local terminal during `exec -t` and `shell`: raw mode, so every key
 * (Ctrl-C, Ctrl-D, arrows) reaches the remote TTY as bytes instead of being
 * handled here, and its size, sent at the start and on every change.
 *
 * Raw mode must be undone on every way out (exit, error, signal), or the
 * user's shell is left without echo: `restore()` is idempotent and also runs
 * on process exit.
 */
import type { ReadStream, WriteStream } from 'node:tty';

export interface TerminalSize {
  rows: number;
  cols: number;
}

/** The size of the terminal on stdout, when it is one. */
export function terminalSize(out: NodeJS.WriteStream = process.stdout): TerminalSize | undefined {
  if (!out.isTTY || !out.rows || !out.columns) return undefined;
  return { rows: out.rows, cols: out.columns };
}

export interface RawTerminal {
  restore(): void;
}

/** Puts a TTY stdin in raw mode until `restore()` (or the process exits); a no-op for a pipe. */
export function rawMode(stdin: NodeJS.ReadStream = process.stdin): RawTerminal {
  const tty = stdin as ReadStream;
  if (!tty.isTTY || typeof tty.setRawMode !== 'function') return { restore: () => undefined };
  const wasRaw = tty.isRaw;
  tty.setRawMode(true);
  let restored = false;
  const restore = () => {
    if (restored) return;
    restored = true;
    process.off('exit', restore);
    try {
      tty.setRawMode(wasRaw);
    } catch {
      // The terminal went away (the window closed): nothing left to restore.
    }
  };
  process.on('exit', restore);
  return { restore };
}

/** Calls `onResize` whenever the terminal on stdout changes size (SIGWINCH); returns how to stop. */
export function onTerminalResize(onResize: (size: TerminalSize) => void, out: NodeJS.WriteStream = process.stdout): () => void {
  if (!out.isTTY) return () => undefined;
  const listener = () => {
    const size = terminalSize(out);
    if (size) onResize(size);
  };
  (out as WriteStream).on('resize', listener);
  return () => (out as WriteStream).off('resize', listener);
}
