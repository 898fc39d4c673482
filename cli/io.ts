/**
 * What every command needs from the outside world, passed in rather than
 * reached for, so the program can be driven from a test with captured output
 * and a fake stdin. Kept free of the API client and the schemas: cli/main.ts
 * imports it before it knows which command runs.
 */
import { readFile } from 'node:fs/promises';
import { nodeFetch } from './node-fetch.js';

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
    fetch: nodeFetch({ redirects: (...args) => globalThis.fetch(...args) }),
    stdoutIsTTY: process.stdout.isTTY === true,
  };
}
