/**
 * Gate for the remote-access tests: besides the Docker Engine and registry
 * (engine.ts), they need root (network namespaces) and Debian's openssh-server,
 * openssh-client, ansible and tmux. Locally a missing piece skips them with a
 * message saying what to install; with CI=true it is a failure, never a silent skip.
 */
import { execFileSync } from 'node:child_process';
import { describe } from 'vitest';
import { SSHD } from '../../support/sshd.js';
import { engineProblem } from './engine.js';

const TOOLS: [string, string[]][] = [
  ['ip', ['-V']],
  [SSHD, ['-V']],
  ['ssh', ['-V']],
  ['ssh-keygen', ['-?']],
  ['ansible', ['--version']],
  ['tmux', ['-V']],
];

function probeTools(): string | undefined {
  if (process.getuid?.() !== 0) return 'network namespaces need root';
  for (const [tool, args] of TOOLS) {
    try {
      execFileSync(tool, args, { stdio: 'pipe', timeout: 30_000 });
    } catch (err) {
      const e = err as NodeJS.ErrnoException & { status?: number };
      // ssh -V and ssh-keygen -? exit non-zero by design; only a missing binary counts.
      if (e.code === 'ENOENT') return `${tool} not found`;
      if (e.status === undefined) return `${tool}: ${e.message.split('\n')[0]}`;
    }
  }
  return undefined;
}

export const toolsProblem = probeTools();

if (toolsProblem && process.env.CI === 'true') {
  throw new Error(`remote-access tests require root, openssh-server, openssh-client, ansible and tmux in CI: ${toolsProblem}`);
}
if (toolsProblem) {
  console.warn(
    `[e2e] skipping remote-access tests: ${toolsProblem}. Run as root with: apt-get install openssh-server openssh-client ansible tmux`,
  );
}

const REMOTE_TEST_TIMEOUT_MS = 120_000;

/** `describe` that runs only with the tools (and, with `docker`, the engine and registry). */
export function describeRemote(name: string, body: () => void, { docker = true } = {}): void {
  const problem = toolsProblem ?? (docker ? engineProblem : undefined);
  if (problem) describe.skip(name, body);
  else describe(name, { timeout: REMOTE_TEST_TIMEOUT_MS }, body);
}
