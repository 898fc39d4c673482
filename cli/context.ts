/**
 * What a command reads from the program: the global options, a client for
 * the hub they name, and output in the format they ask for. The outside
 * world itself (CliIO) is in io.ts.
 */
import type { Command } from 'commander';
import { HubClient } from './client.js';
import type { CliIO } from './io.js';
import { formatStructured, type OutputFormat } from './output.js';
import { pinnedFetch, readCaFile } from './pinned-fetch.js';

export { type CliIO, processIO } from './io.js';

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
