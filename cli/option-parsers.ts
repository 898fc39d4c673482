/**
 * Values of command-line options (ports, counts, durations, sizes, the topic root),
 * parsed for commander with its InvalidArgumentError. Apart from
 * lifecycle.ts so that commands which only parse a duration do not load the
 * logger that `server` and `agent` need.
 */
import { InvalidArgumentError } from 'commander';
import { parseDuration, parseSize } from '../shared/schemas/units.js';
import { Topics } from '../shared/topics.js';

/** 0-65535; 0 asks the OS for a free port. */
export function parsePort(value: string): number {
  if (!/^[0-9]{1,5}$/.test(value) || Number(value) > 65535) throw new InvalidArgumentError('expected a port number, 0-65535.');
  return Number(value);
}

/** A whole number, 1 or more (a revision, a count of devices). */
export function parsePositiveInteger(value: string): number {
  if (!/^[0-9]+$/.test(value) || Number(value) < 1 || !Number.isSafeInteger(Number(value))) {
    throw new InvalidArgumentError('expected a whole number, 1 or more.');
  }
  return Number(value);
}

/** `10s`, `500ms`, `5m`, `1h` → milliseconds, more than zero. */
export function parsePositiveDuration(value: string): number {
  let ms: number;
  try {
    ms = parseDuration(value);
  } catch {
    throw new InvalidArgumentError('expected a duration such as 500ms, 10s, 5m, 1h or 7d.');
  }
  if (ms <= 0) throw new InvalidArgumentError('must be more than zero.');
  return ms;
}

/** A size such as 512m or 1g (binary units, like Docker's). */
export function parseSizeArg(value: string): number {
  try {
    return parseSize(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

export function parseTopicRoot(value: string): string {
  try {
    return new Topics(value).root;
  } catch (err) {
    throw new InvalidArgumentError(`${(err as Error).message}.`);
  }
}
