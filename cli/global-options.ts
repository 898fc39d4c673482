/**
 * The global options every command reads (--hub, -o, --token, --ca): apart
 * from context.ts, whose API client the session commands do not load.
 */
import type { Command } from 'commander';
import type { OutputFormat } from './output-formats.js';

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
