/**
 * What a command reads from the program: the global options, a client for
 * the hub they name, and output in the format they ask for. The outside
 * world itself (CliIO) is in io.ts.
 */
import type { Command } from 'commander';
import { HubClient } from './client.js';
import { globalOptions } from './global-options.js';
import type { CliIO } from './io.js';
import { formatStructured, type OutputFormat } from './output.js';
import { pinnedFetch, readCaFile } from './pinned-fetch.js';

export { type GlobalOptions, globalOptions } from './global-options.js';
export { type CliIO, processIO } from './io.js';

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
