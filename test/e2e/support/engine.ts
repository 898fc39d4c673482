/**
 * Gate for tests that need a real Docker Engine and the loopback registry.
 *
 * Locally, without an engine, they skip with a message saying how to enable
 * them. With CI=true a missing engine is a failure, never a silent skip.
 */
import { execFileSync } from 'node:child_process';
import { describe } from 'vitest';

/** The loopback registry `.ci/run` starts (Debian's docker-registry). */
export const TEST_REGISTRY = process.env.FLOTILLA_TEST_REGISTRY ?? '127.0.0.1:5000';

function probe(): string | undefined {
  try {
    execFileSync('docker', ['version', '--format', '{{.Server.Version}}'], { stdio: 'pipe', timeout: 10_000 });
  } catch (err) {
    return `Docker Engine not reachable (${(err as Error).message.split('\n')[0]})`;
  }
  try {
    execFileSync('curl', ['-fsS', '--max-time', '5', `http://${TEST_REGISTRY}/v2/`], { stdio: 'pipe' });
  } catch {
    return `no registry at http://${TEST_REGISTRY}/v2/`;
  }
  return undefined;
}

export const engineProblem = probe();

if (engineProblem && process.env.CI === 'true') {
  throw new Error(`e2e tests require a Docker Engine and a loopback registry in CI: ${engineProblem}`);
}
if (engineProblem) {
  console.warn(
    `[e2e] skipping Docker tests: ${engineProblem}. To run them: apt-get install docker.io docker-registry busybox-static, ` +
      'start dockerd and docker-registry (see .ci/run), or set FLOTILLA_TEST_REGISTRY.',
  );
}

/**
 * Real pulls, swaps and health gates: a test with several updates takes
 * 15–20 s on a quiet box and can take twice that on a busy CI machine.
 */
const E2E_TEST_TIMEOUT_MS = 90_000;

/** `describe` that runs only where a Docker Engine and the registry are reachable, with e2e-sized test timeouts. */
export function describeDocker(name: string, body: () => void): void {
  if (engineProblem) describe.skip(name, body);
  else describe(name, { timeout: E2E_TEST_TIMEOUT_MS }, body);
}
