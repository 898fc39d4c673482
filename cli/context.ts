/**
 * What every command needs from the outside world, passed in rather than
 * reached for, so the program can be driven from a test with captured output
 * and a fake stdin.
 */
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { HubClient } from './client.js';
import { formatStructured, type OutputFormat } from './output.js';
import { pinnedFetch, readCaFile } from './pinned-fetch.js';

export interface CliIO {
  stdout(text: string): void;
  stderr(text: string): void;
  readStdin(): Promise<string>;
  readFile(path: string): Promise<string>;
  fetch: typeof fetch;
  /** stdout is a terminal: live views (`top`) redraw, and stderr lines are coloured. */
  stdoutIsTTY?: boolean;
}

export function processIO(): CliIO {
  return {
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
    readStdin: async () => {
      const chunks: Buffer[] = [];
      for await (const chunk of process.stdin) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
      return Buffer.concat(chunks).toString('utf8');
    },
    readFile: (path) => readFile(path, 'utf8'),
    fetch: (...args) => globalThis.fetch(...args),
    stdoutIsTTY: process.stdout.isTTY === true,
  };
}

export interface GlobalOptions {
  hub: string;
  output: OutputFormat;
  /** A service account's key (or the admin key), sent as a bearer token. */
  token?: string;
  /** A CA certificate file to trust for an https hub, instead of the system's. */
  ca?: string;
}

export function globalOptions(command: Command): GlobalOptions {
  const options = command.optsWithGlobals<GlobalOptions>();
  // `FLOTILLA_TOKEN= flotilla …` means no token, not an empty one.
  const { token, ca, ...rest } = options;
  return { ...rest, ...(token ? { token } : {}), ...(ca ? { ca } : {}) };
}

export function hubClient(command: Command, io: CliIO): HubClient {
  const { hub, token, ca } = globalOptions(command);
  return new HubClient(hub, {
    fetch: ca === undefined ? io.fetch : pinnedFetch(readCaFile(ca), io.fetch),
    ...(token !== undefined ? { token } : {}),
  });
}

/** Prints `body` as JSON/YAML when asked to, otherwise what `human()` renders. */
export function render(io: CliIO, format: OutputFormat, body: unknown, human: () => string): void {
  io.stdout(format === 'table' ? human() : formatStructured(body, format));
}
