/**
 * Runs `flotilla ARGS…` inside the test process (cli/main.ts `run`) with its output captured, for
 * unit tests of what a command prints, refuses and sends. The hub is whatever `fetch` plays; by
 * default it must not be contacted at all. `files` stand in for the file system (any other path is
 * ENOENT), unless `io` gives its own readFile (a test reading a real scratch folder).
 */
import type { CliIO } from '../../cli/context.js';
import { run } from '../../cli/main.js';

export interface InProcessRun {
  code: number;
  stdout: string;
  stderr: string;
}

export interface InProcessOptions {
  /** What the hub answers; called for every request the command makes. */
  fetch?: CliIO['fetch'];
  stdin?: string;
  files?: Record<string, string>;
  /** The `--hub` the command is given. */
  hub?: string;
  /** Anything else of the command's IO (a real readFile, a TTY). */
  io?: Partial<CliIO>;
}

export async function runCliInProcess(args: string[], options: InProcessOptions = {}): Promise<InProcessRun> {
  let stdout = '';
  let stderr = '';
  const files = options.files ?? {};
  const io: CliIO = {
    readStdin: async () => options.stdin ?? '',
    readFile: async (path) => {
      const text = files[path];
      if (text === undefined) throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' });
      return text;
    },
    fetch:
      options.fetch ??
      (async () => {
        throw new Error('the hub must not be contacted');
      }),
    ...options.io,
    stdout: (text) => {
      stdout += text;
    },
    stderr: (text) => {
      stderr += text;
    },
  };
  const code = await run(['node', 'flotilla', '--hub', options.hub ?? 'http://127.0.0.1:7070', ...args], io);
  return { code, stdout, stderr };
}

/** A JSON answer of the stand-in hub. */
export function jsonResponse(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
}
