/**
 * A terminal for tests of interactive commands (`flotilla exec -it`): the
 * command runs in a pane of a tmux server of its own (its own socket and an
 * empty config, never the user's), which gives it a real pty the test can
 * type into, read back and resize, as a person at a terminal would.
 *
 * The command runs under a small shell that writes its exit status to a
 * file: tmux itself sometimes leaves an exited pane's process unreaped (a
 * zombie) and the pane alive, so its own pane_dead is not to be waited on.
 * The pane stays after the command exits (remain-on-exit, set in the config
 * so it holds from the first instant). close() kills the server and removes
 * the socket's dir.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { waitFor } from './wait.js';

const run = promisify(execFile);

export class Terminal {
  private constructor(
    private readonly dir: string,
    private readonly socket: string,
    private readonly statusFile: string,
  ) {}

  /** Starts `command` (a shell command line) in a `cols`×`rows` terminal. */
  static async start(command: string, { cols = 80, rows = 24, env = {} as Record<string, string> } = {}): Promise<Terminal> {
    const dir = mkdtempSync(join(tmpdir(), 'flotilla-tty-'));
    const config = join(dir, 'tmux.conf');
    writeFileSync(config, ['set -g remain-on-exit on', 'set -g history-limit 10000', ''].join('\n'));
    const terminal = new Terminal(dir, join(dir, 'tmux.sock'), join(dir, 'status'));
    const exports = Object.entries(env).map(([k, v]) => `export ${k}=${shellQuote(v)}; `);
    const status = shellQuote(terminal.statusFile);
    const line = `${exports.join('')}${command}; echo "$?" > ${status}.tmp && mv ${status}.tmp ${status}`;
    try {
      await terminal.tmux('-f', config, 'new-session', '-d', '-s', 'test', '-x', `${cols}`, '-y', `${rows}`, line);
    } catch (err) {
      rmSync(dir, { recursive: true, force: true });
      throw err;
    }
    return terminal;
  }

  private async tmux(...args: string[]): Promise<string> {
    const { stdout } = await run('tmux', ['-S', this.socket, ...args], { timeout: 10_000 });
    return stdout;
  }

  /** Types `text` literally (no key names), then Enter unless `enter` is false. */
  async type(text: string, { enter = true } = {}): Promise<void> {
    await this.tmux('send-keys', '-t', 'test', '-l', text);
    if (enter) await this.tmux('send-keys', '-t', 'test', 'Enter');
  }

  /** Presses keys by tmux name: `C-d`, `C-c`, `Enter`. */
  async press(...keys: string[]): Promise<void> {
    await this.tmux('send-keys', '-t', 'test', ...keys);
  }

  /** What the screen (and its scrollback) shows now, trailing blank lines dropped. */
  async screen(): Promise<string> {
    return (await this.tmux('capture-pane', '-p', '-J', '-S', '-', '-t', 'test')).replace(/\n+$/, '');
  }

  /** Waits until the screen matches `pattern`; fails with what it showed. */
  async waitForScreen(pattern: RegExp, timeoutMs = 20_000): Promise<string> {
    let last = '';
    try {
      return await waitFor(
        `the terminal to show ${pattern}`,
        async () => {
          last = await this.screen();
          return pattern.test(last) ? last : undefined;
        },
        { timeoutMs, intervalMs: 100 },
      );
    } catch (err) {
      throw new Error(`${(err as Error).message}; the screen was:\n${last}`);
    }
  }

  /** Resizes the window, as dragging a terminal's corner does: the program in it gets SIGWINCH. */
  async resize(cols: number, rows: number): Promise<void> {
    await this.tmux('resize-window', '-t', 'test', '-x', `${cols}`, '-y', `${rows}`);
  }

  /** The command's exit status once it has exited (a shell's: 128 + N when signal N killed it), else undefined. */
  async exitStatus(): Promise<number | undefined> {
    try {
      return Number(readFileSync(this.statusFile, 'utf8').trim());
    } catch {
      return undefined;
    }
  }

  /** Waits for the command to exit and returns its status. */
  async waitForExit(timeoutMs = 20_000): Promise<number> {
    try {
      return await waitFor('the command in the terminal to exit', () => this.exitStatus(), { timeoutMs, intervalMs: 100 });
    } catch (err) {
      throw new Error(`${(err as Error).message}; the screen was:\n${await this.screen()}`);
    }
  }

  async close(): Promise<void> {
    await this.tmux('kill-server').catch(() => undefined);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}
