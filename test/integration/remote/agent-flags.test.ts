/**
 * The remote-access flags of `flotilla agent`, as a device's owner sets
 * them: a real agent process on a broker the test plays the hub on.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { CHANNEL, FRAME } from '../../../shared/remote/index.js';
import { Cleanup } from '../../support/cleanup.js';
import { runCli, scratchDir, spawnCli, stopAll } from '../../support/processes.js';
import { startHubDouble } from './agent-hub-double.js';

const DEVICE = 'dev-flags';

describe('flotilla agent remote-access flags', () => {
  const cleanup = new Cleanup();
  afterEach(async () => {
    await stopAll();
    await cleanup.run();
  });

  it('--allow-host-shell, --max-sessions and --session-idle-timeout reach the agent', async () => {
    const hub = await startHubDouble(cleanup);
    const args = ['agent', '--device-id', DEVICE, '--hub-url', hub.url, '--data-dir', scratchDir('flotilla-agent-flags-')];
    const agent = spawnCli('agent', [
      ...args,
      '--outbox',
      'memory',
      '--allow-host-shell',
      '--max-sessions',
      '1',
      '--session-idle-timeout',
      '2s',
    ]);
    await hub.deviceReady(DEVICE).catch((err: Error) => {
      throw new Error(`${err.message}; agent output: ${agent.output}`);
    });
    const shell = await hub.open(DEVICE, { kind: 'shell', tty: false });
    expect(shell.reply.ok).toBe(true);
    const second = await hub.open(DEVICE, { kind: 'shell', tty: false });
    expect(second.reply).toMatchObject({ ok: false, error: { code: 'busy' } });
    const started = Date.now();
    expect(await shell.peer.ended(10_000)).toMatchObject({
      type: FRAME.close,
      channel: CHANNEL.session,
      reason: expect.stringMatching(/^idle for 2s/),
    });
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_500);
  });

  it('refuses values outside the agent config bounds, naming the bound', async () => {
    const zero = await runCli(['agent', '--max-sessions', '0', '--data-dir', scratchDir('flotilla-agent-flags-')]);
    expect(zero.code).not.toBe(0);
    expect(zero.stderr).toContain('--max-sessions');
    expect(zero.stderr).toContain('from 1 to 1000');
    const short = await runCli(['agent', '--session-idle-timeout', '100ms', '--data-dir', scratchDir('flotilla-agent-flags-')]);
    expect(short.code).not.toBe(0);
    expect(short.stderr).toContain('must be at least 1s');
  });
});
