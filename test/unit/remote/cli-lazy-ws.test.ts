/**
 * `ws` is loaded only when a session opens: registering every command (what
 * `flotilla --help` does, and more than `flotilla get devices` loads) leaves
 * it out, so short commands do not pay for it.
 */
import { execFileSync } from 'node:child_process';
import { expect, it } from 'vitest';
import { REPO_ROOT } from '../../support/processes.js';

const SCRIPT = `
import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);
const loaded = () => Object.keys(require.cache).some((path) => path.includes('/node_modules/ws/'));
const { loadAllCommands } = await import('./cli/main.ts');
await loadAllCommands();
const afterCommands = loaded();
const { openSession } = await import('./cli/remote/session-client.ts');
await openSession({ hub: 'http://127.0.0.1:1', device: 'd', request: { kind: 'forward', port: 1 } }).catch(() => undefined);
console.log(JSON.stringify({ afterCommands, afterSession: loaded() }));
`;

it('loads ws when a session opens, not when the commands are registered', { timeout: 30_000 }, () => {
  const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', SCRIPT], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
  });
  expect(JSON.parse(out)).toEqual({ afterCommands: false, afterSession: true });
});
