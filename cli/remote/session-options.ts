/**
 * What every session command (exec, shell, port-forward, ssh-proxy) reads
 * from the program: the hub, token and CA of the global options, and its
 * own --ping-interval. Signals: the first SIGINT/SIGTERM/SIGHUP ends the
 * session from this side (the hub then tells the device); a second one
 * kills the CLI as usual.
 */
import type { Command } from 'commander';
import { Option } from 'commander';
import { globalOptions } from '../global-options.js';
import { parsePositiveDuration } from '../option-parsers.js';
import { readCaFile } from '../pinned-fetch.js';
import type { SessionTarget } from './session-client.js';

export interface PingOptions {
  pingInterval?: number;
}

export function pingIntervalOption(): Option {
  return new Option(
    '--ping-interval <duration>',
    'how often the hub is pinged; two unanswered pings end the session as "lost the hub" (default 10s)',
  ).argParser(parsePositiveDuration);
}

export function sessionTarget(command: Command): SessionTarget {
  const { hub, token, ca } = globalOptions(command);
  return { hub, ...(token !== undefined ? { token } : {}), ...(ca !== undefined ? { ca: readCaFile(ca) } : {}) };
}

const END_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/** Calls `onStop` on the first end signal; returns how to stop listening. */
export function onStopSignal(onStop: (signal: NodeJS.Signals) => void): () => void {
  const listener = (signal: NodeJS.Signals) => {
    dispose();
    onStop(signal);
  };
  const dispose = () => {
    for (const signal of END_SIGNALS) process.off(signal, listener);
  };
  for (const signal of END_SIGNALS) process.once(signal, listener);
  return dispose;
}
